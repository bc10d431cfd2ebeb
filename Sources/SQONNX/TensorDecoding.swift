import CProtobufC
import ONNXProto
import SQIR

/// State shared while decoding one file.
final class DecodeContext {
    let file: String
    let options: ONNXDecoder.Options
    let allocator: UnpackAllocator
    let externalData: ExternalDataResolver

    init(file: String, options: ONNXDecoder.Options, allocator: UnpackAllocator, modelDirectory: String?) {
        self.file = file
        self.options = options
        self.allocator = allocator
        self.externalData = ExternalDataResolver(file: file, modelDirectory: modelDirectory)
    }
}

/// `DataLocation.EXTERNAL` in TensorProto.data_location.
let externalDataLocation: Int32 = 1

extension DecodeContext {
    /// Checks dtype and dims of a TensorProto: the dtype, the shape, and the byte size.
    func tensorLayout(_ proto: Onnx__TensorProto, location: String) throws -> (dtype: DType, shape: [Int], count: Int, byteCount: Int) {
        let rawType = (proto.has_data_type != 0) ? proto.data_type : 0
        guard let dtype = DType(rawValue: rawType) else {
            throw ONNXError.unknownDType(file: file, location: location, dataType: rawType)
        }
        var shape: [Int] = []
        var count = 1
        var overflow = false
        for (axis, dim) in array(proto.dims, proto.n_dims).enumerated() {
            guard dim >= 0 else {
                throw ONNXError.invalidTensor(file: file, location: location, reason: "dimension \(axis) is negative (\(dim))")
            }
            shape.append(Int(dim))
            if !overflow {
                let (product, over) = count.multipliedReportingOverflow(by: Int(dim))
                overflow = over
                count = product
            }
        }
        let elementSize = dtype.byteSize ?? 0
        let (byteCount, byteOverflow) = count.multipliedReportingOverflow(by: elementSize)
        if overflow || byteOverflow {
            throw ONNXError.tensorTooLarge(file: file, location: location, reason: "dims \(shape) of \(dtype) overflow the element count")
        }
        if byteCount > options.maxTensorBytes {
            throw ONNXError.tensorTooLarge(file: file, location: location,
                reason: "dims \(shape) of \(dtype) need \(byteCount) bytes, more than the limit of \(options.maxTensorBytes)")
        }
        return (dtype, shape, count, byteCount)
    }

    /// Decodes a TensorProto: raw_data (adopted, no copy), the typed fields, or external data
    /// (memory-mapped). Throws naming `location` when the data does not match dtype × dims.
    func decodeTensor(_ proto: Onnx__TensorProto, location: String) throws -> Tensor {
        let (dtype, shape, count, byteCount) = try tensorLayout(proto, location: location)
        func invalid(_ reason: String) -> ONNXError {
            .invalidTensor(file: file, location: location, reason: reason)
        }
        if proto.segment != nil {
            throw ONNXError.unsupported(file: file, location: location, reason: "segmented tensors (TensorProto.segment)")
        }
        if dtype == .string {
            guard !(proto.has_data_location != 0) || proto.data_location != externalDataLocation else {
                throw ONNXError.unsupported(file: file, location: location, reason: "string tensors stored as external data")
            }
            guard !(proto.has_raw_data != 0) || proto.raw_data.len == 0 else { throw invalid("a string tensor cannot use raw_data") }
            let strings = array(proto.string_data, proto.n_string_data).map(byteArray)
            guard strings.count == count else {
                throw invalid("has \(strings.count) strings, dims \(shape) need \(count)")
            }
            return try makeTensor { try Tensor(strings: strings, shape: shape) }
        }
        let storage: TensorStorage
        if (proto.has_data_location != 0) && proto.data_location == externalDataLocation {
            let entries = messages(proto.external_data, proto.n_external_data).map {
                (key: string($0.pointee.key), value: string($0.pointee.value))
            }
            storage = try externalData.storage(entries: entries, byteCount: byteCount,
                                                elementSize: dtype.byteSize ?? 1, location: location)
        } else if (proto.has_raw_data != 0) {
            guard proto.raw_data.len == byteCount else {
                throw invalid("raw_data has \(proto.raw_data.len) bytes, \(dtype) \(shape) needs \(byteCount)")
            }
            storage = allocator.adopt(proto.raw_data.data, byteCount: byteCount)
        } else {
            storage = try typedFieldStorage(proto, dtype: dtype, count: count, invalid: invalid)
        }
        return try makeTensor { try Tensor(dtype: dtype, shape: shape, storage: storage) }
    }

    private func makeTensor(_ build: () throws -> Tensor) throws -> Tensor {
        do {
            return try build()
        } catch let error as IRError {
            throw ONNXError.invalidTensor(file: file, location: error.location ?? "tensor", reason: error.reason)
        }
    }

    /// Storage from the typed repeated fields ONNX defines for each dtype.
    private func typedFieldStorage(_ proto: Onnx__TensorProto, dtype: DType, count: Int,
                                   invalid: (String) -> ONNXError) throws -> TensorStorage {
        func checked<T>(_ values: UnsafeBufferPointer<T>, _ field: String) throws -> UnsafeBufferPointer<T> {
            guard values.count == count else {
                throw invalid(values.isEmpty && count > 0
                    ? "has no data (no raw_data and no \(field))"
                    : "\(field) has \(values.count) elements, the dims need \(count)")
            }
            return values
        }
        func adopt<T>(_ values: UnsafeBufferPointer<T>) -> TensorStorage {
            allocator.adopt(values.baseAddress.map(UnsafeRawPointer.init), byteCount: values.count * MemoryLayout<T>.stride)
        }
        func narrowed<Narrow: FixedWidthInteger, Wide: FixedWidthInteger>(_ values: UnsafeBufferPointer<Wide>, to: Narrow.Type) -> TensorStorage {
            let storage = TensorStorage(byteCount: values.count * MemoryLayout<Narrow>.stride)
            if let out = storage.mutableBytes?.bindMemory(to: Narrow.self) {
                for i in values.indices { out[i] = Narrow(truncatingIfNeeded: values[i]) }
            }
            return storage
        }
        switch dtype {
        case .float: return adopt(try checked(array(proto.float_data, proto.n_float_data), "float_data"))
        case .double: return adopt(try checked(array(proto.double_data, proto.n_double_data), "double_data"))
        case .int64: return adopt(try checked(array(proto.int64_data, proto.n_int64_data), "int64_data"))
        case .uint64: return adopt(try checked(array(proto.uint64_data, proto.n_uint64_data), "uint64_data"))
        case .uint32: return narrowed(try checked(array(proto.uint64_data, proto.n_uint64_data), "uint64_data"), to: UInt32.self)
        case .int32: return adopt(try checked(array(proto.int32_data, proto.n_int32_data), "int32_data"))
        case .int16: return narrowed(try checked(array(proto.int32_data, proto.n_int32_data), "int32_data"), to: Int16.self)
        case .uint16, .float16, .bfloat16:
            return narrowed(try checked(array(proto.int32_data, proto.n_int32_data), "int32_data"), to: UInt16.self)
        case .int8: return narrowed(try checked(array(proto.int32_data, proto.n_int32_data), "int32_data"), to: Int8.self)
        case .uint8: return narrowed(try checked(array(proto.int32_data, proto.n_int32_data), "int32_data"), to: UInt8.self)
        case .bool:
            let values = try checked(array(proto.int32_data, proto.n_int32_data), "int32_data")
            let storage = TensorStorage(byteCount: values.count)
            if let out = storage.mutableBytes?.bindMemory(to: UInt8.self) {
                for i in values.indices { out[i] = values[i] != 0 ? 1 : 0 }
            }
            return storage
        case .string:
            throw invalid("string tensors have no numeric data")
        }
    }

    /// Densifies a SparseTensorProto: `values` [NNZ] scattered at `indices` ([NNZ] linear or
    /// [NNZ, rank] coordinates, int64) into a zero tensor of `dims`.
    func densify(_ sparse: Onnx__SparseTensorProto, location: String) throws -> Tensor {
        func invalid(_ reason: String) -> ONNXError {
            .invalidTensor(file: file, location: location, reason: "sparse tensor: " + reason)
        }
        guard let valuesProto = sparse.values?.pointee else { throw invalid("no values") }
        let values = try decodeTensor(valuesProto, location: location + " values")
        let shape = array(sparse.dims, sparse.n_dims).map { Int($0) }
        guard values.dtype != .string, let elementSize = values.dtype.byteSize else {
            throw ONNXError.unsupported(file: file, location: location, reason: "sparse string tensors")
        }
        guard shape.allSatisfy({ $0 >= 0 }), let count = checkedElementCount(shape) else { throw invalid("invalid dims \(shape)") }
        let (byteCount, overflow) = count.multipliedReportingOverflow(by: elementSize)
        guard !overflow, byteCount <= options.maxTensorBytes else {
            throw ONNXError.tensorTooLarge(file: file, location: location, reason: "dense form of dims \(shape) is larger than the limit of \(options.maxTensorBytes) bytes")
        }
        let nnz = values.count
        guard values.rank == 1 else { throw invalid("values must be 1-D") }
        var linear: [Int] = []
        if nnz > 0 {
            guard let indicesProto = sparse.indices?.pointee else { throw invalid("no indices") }
            let indices = try decodeTensor(indicesProto, location: location + " indices")
            guard indices.dtype == .int64 else { throw invalid("indices must be int64") }
            let flat = indices.elements(as: Int64.self)
            if indices.shape == [nnz] {
                linear = flat.map { Int(truncatingIfNeeded: $0) }
            } else if indices.shape == [nnz, shape.count] {
                for row in 0..<nnz {
                    var index = 0
                    for axis in shape.indices {
                        let coordinate = Int(truncatingIfNeeded: flat[row * shape.count + axis])
                        guard coordinate >= 0, coordinate < shape[axis] else { throw invalid("index \(coordinate) out of range on axis \(axis)") }
                        index = index * shape[axis] + coordinate
                    }
                    linear.append(index)
                }
            } else {
                throw invalid("indices shape \(indices.shape) is neither [\(nnz)] nor [\(nnz), \(shape.count)]")
            }
        }
        let storage = TensorStorage(byteCount: byteCount)
        if let target = storage.mutableBytes?.baseAddress, let source = values.storage.bytes.baseAddress {
            for (k, index) in linear.enumerated() {
                guard index >= 0, index < count else { throw invalid("index \(index) out of range for \(count) elements") }
                (target + index * elementSize).copyMemory(from: source + k * elementSize, byteCount: elementSize)
            }
        }
        return try makeTensor { try Tensor(dtype: values.dtype, shape: shape, storage: storage) }
    }
}

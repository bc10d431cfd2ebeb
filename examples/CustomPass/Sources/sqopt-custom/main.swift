// sqopt-custom: the sqopt command line with two extra passes. The passes live in their own
// target (ExampleCustomPass) and are registered exactly like the built-ins; everything else
// (pipeline parsing, --list-passes, --time-passes, verification, `opt`) is sqopt's.
//
//   swift run sqopt-custom --passes strip-multiply-by-one,dce model.onnx -o out.onnx
//   swift run sqopt-custom opt examples/CustomPass/Tests/div-to-mul.sqir --passes div-to-mul,dce --split-input-file
import ExampleCustomPass
import SQDriver
import SQIR
import SQPasses

var registry = PassRegistry.builtin
registry.register(StripMultiplyByOne.self)
registry.register(DivToMul.self)
SignalCleanup.install(toolName: "sqopt-custom")
Driver(toolName: "sqopt-custom", registry: registry).main()

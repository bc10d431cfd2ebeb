// sqopt-custom: the sqopt command line with one extra pass. The pass lives in its own target
// (ExampleCustomPass) and is registered exactly like the built-ins; everything else (pipeline
// parsing, --list-passes, --time-passes, verification) is sqopt's.
//
//   swift run sqopt-custom --passes strip-multiply-by-one,dce model.onnx -o out.onnx
import ExampleCustomPass
import SQDriver
import SQIR
import SQPasses

var registry = PassRegistry.builtin
registry.register(StripMultiplyByOne.self)
SignalCleanup.install(toolName: "sqopt-custom")
Driver(toolName: "sqopt-custom", registry: registry).main()

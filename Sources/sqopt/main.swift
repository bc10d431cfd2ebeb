import SQDriver
import SQPasses

Driver(registry: .builtin).main()

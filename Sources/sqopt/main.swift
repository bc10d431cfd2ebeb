import SQDriver
import SQPasses

SignalCleanup.install()
Driver(registry: .builtin).main()

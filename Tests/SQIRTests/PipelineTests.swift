import Testing
import SQIR

/// A pass with one option of each kind, to test parsing and printing of options.
struct ToyPass: Pass {
    enum Mode: String, CaseIterable, PassOptionChoice { case fast, exact }
    static let name = "toy-pass"
    static let summary = "A pass with every kind of option"
    static let description = "Does nothing; declares options."
    static let count = PassOption("count", default: 3, help: "an int")
    static let alpha = PassOption("alpha", default: 0.5, help: "a float")
    static let enabled = PassOption("enabled", default: true, help: "a bool")
    static let mode = PassOption("mode", default: Mode.fast, help: "a choice")
    static let label = PassOption("label", default: "", help: "a string")
    static let options = [count.declaration, alpha.declaration, enabled.declaration, mode.declaration, label.declaration]

    let values: (Int, Double, Bool, Mode, String)

    init(options: PassOptions) throws {
        values = (options[Self.count], options[Self.alpha], options[Self.enabled], options[Self.mode], options[Self.label])
        guard values.1 >= 0 && values.1 <= 1 else {
            throw PipelineError.invalidOptionValue(pass: Self.name, option: "alpha", value: options[Self.alpha].optionText,
                                                   expected: "a float in [0, 1]")
        }
    }

    func run(on model: Model, context: PassContext) throws -> PassResult { .unchanged }
}

struct NoOptionPass: Pass {
    static let name = "no-options"
    static let summary = "No options"
    static let description = "Does nothing."
    init(options: PassOptions) {}
    func run(on model: Model, context: PassContext) throws -> PassResult { .unchanged }
}

let toyRegistry = PassRegistry().registering(ToyPass.self).registering(NoOptionPass.self)

@Suite struct PipelineTests {
    let parser = PipelineParser(registry: toyRegistry)

    @Test(arguments: [
        ("", ""),
        ("no-options", "no-options"),
        (" no-options , toy-pass ", "no-options,toy-pass"),
        ("toy-pass{}", "toy-pass"),
        ("toy-pass{count=7}", "toy-pass{count=7}"),
        ("toy-pass{ alpha = 0.25 , mode=exact,enabled=0}", "toy-pass{alpha=0.25,mode=exact,enabled=false}"),
        ("toy-pass{label=\"a,b{c}\"},no-options", "toy-pass{label=\"a,b{c}\"},no-options"),
        ("toy-pass{label=x y}", "toy-pass{label=x y}"),
        ("toy-pass{alpha=1e-1}", "toy-pass{alpha=0.1}"),
    ])
    func parsesAndPrintsBack(_ text: String, _ printed: String) throws {
        let pipeline = try parser.parse(text)
        #expect(pipeline.description == printed)
        #expect(try parser.parse(pipeline.description).description == printed)
    }

    @Test func optionValuesReachThePass() throws {
        let pipeline = try parser.parse("toy-pass{count=7,alpha=0.25,enabled=false,mode=exact,label=hi}")
        let pass = try #require(try pipeline.makePasses(using: toyRegistry).first as? ToyPass)
        #expect(pass.values.0 == 7 && pass.values.1 == 0.25 && pass.values.2 == false && pass.values.3 == .exact && pass.values.4 == "hi")
        let defaults = try #require(try toyRegistry.makePass(named: "toy-pass") as? ToyPass)
        #expect(defaults.values.0 == 3 && defaults.values.3 == .fast)
    }

    @Test(arguments: [
        ("toy-pas", "unknown pass 'toy-pas' (did you mean 'toy-pass'?); valid passes: no-options, toy-pass"),
        ("zzz", "unknown pass 'zzz'; valid passes: no-options, toy-pass"),
        ("toy-pass{cout=1}", "unknown option 'cout' for pass 'toy-pass' (did you mean 'count'?); valid options: count, alpha, enabled, mode, label"),
        ("toy-pass{zz=1}", "unknown option 'zz' for pass 'toy-pass'; valid options: count, alpha, enabled, mode, label"),
        ("no-options{x=1}", "pass 'no-options' takes no options (got 'x')"),
        ("toy-pass{count=abc}", "invalid value 'abc' for option 'count' of pass 'toy-pass': expected int"),
        ("toy-pass{alpha=inf}", "invalid value 'inf' for option 'alpha' of pass 'toy-pass': expected float"),
        ("toy-pass{enabled=yes}", "invalid value 'yes' for option 'enabled' of pass 'toy-pass': expected bool"),
        ("toy-pass{mode=slow}", "invalid value 'slow' for option 'mode' of pass 'toy-pass': expected fast|exact"),
        ("toy-pass{count=1,count=2}", "option 'count' is given twice for pass 'toy-pass'"),
        ("toy-pass{count}", "expected 'option=value' in the options of pass 'toy-pass', got 'count'"),
        ("toy-pass{count=1", "unbalanced '{' at column 9 of pipeline 'toy-pass{count=1'"),
        ("no-options,toy-pass{label=\"x}", "unbalanced '{' at column 20 of pipeline 'no-options,toy-pass{label=\"x}'"),
        ("no-options}", "unexpected '}' at column 11 of pipeline 'no-options}'"),
        ("no-options,,toy-pass", "expected a pass name at column 12 of pipeline 'no-options,,toy-pass'"),
        ("no-options,", "expected a pass name at column 12 of pipeline 'no-options,'"),
        ("toy-pass{count=1}x", "unexpected 'x' at column 18 of pipeline 'toy-pass{count=1}x'"),
    ])
    func errorsAreExact(_ text: String, _ message: String) {
        do {
            _ = try parser.parse(text)
            Issue.record("expected: \(message)")
        } catch {
            #expect(error.description == message)
        }
    }

    @Test func rangeErrorsComeFromThePass() {
        do {
            _ = try PassManager(pipeline: "toy-pass{alpha=2}", registry: toyRegistry)
            Issue.record("expected a range error")
        } catch {
            #expect("\(error)" == "invalid value '2.0' for option 'alpha' of pass 'toy-pass': expected a float in [0, 1]")
        }
    }

    @Test func listingShowsOptionsAndDefaults() {
        let listing = toyRegistry.listing()
        #expect(listing.contains("toy-pass"))
        #expect(listing.contains("count=3"))
        #expect(listing.contains("mode=fast"))
    }
}

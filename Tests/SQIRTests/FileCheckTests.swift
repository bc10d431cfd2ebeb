import Testing
import SQIR

@Suite struct FileCheckTests {
    let output = """
        graph first(%x: f32[4]) -> (%y: f32[4]) {
          %a: f32[4] = Relu(%x) @r
          %y: f32[4] = Neg(%a) @n
          return %y
        }
        graph second(%x: f32[4]) -> (%z: f32[4]) {
          %z: f32[4] = Abs(%x)

          return %z
        }
        """

    func passes(_ checks: String) -> Bool {
        (try? FileCheck().match(output, checks: checks)) != nil
    }

    func failure(_ checks: String) -> String {
        do {
            try FileCheck().match(output, checks: checks)
            return "passed"
        } catch {
            return "\(error)"
        }
    }

    @Test func positiveDirectives() {
        #expect(passes("// CHECK: Relu\n// CHECK: Neg"))
        #expect(passes("// CHECK: %a: f32[4] = Relu\n// CHECK-NEXT: Neg(%a)\n// CHECK-SAME: @n"))
        #expect(passes("// CHECK: Abs\n// CHECK-EMPTY:\n// CHECK-NEXT: return %z"))
        #expect(passes("// CHECK:   %y:    f32[4]   =   Neg"))
        #expect(passes("// CHECK: Relu({{%[a-z]+}})"))
    }

    @Test func capturesAndUses() {
        #expect(passes("// CHECK: %[[V:[a-z]+]]: f32[4] = Relu\n// CHECK: Neg(%[[V]])"))
        #expect(!passes("// CHECK: %[[V:[a-z]+]]: f32[4] = Relu\n// CHECK: Neg(%[[V]]x)"))
    }

    @Test func labelsScopeTheOtherDirectives() {
        #expect(passes("// CHECK-LABEL: graph first\n// CHECK: Neg\n// CHECK-LABEL: graph second\n// CHECK-NOT: Neg\n// CHECK: Abs"))
        // Abs is in the second block, not the first.
        #expect(failure("// CHECK-LABEL: graph first\n// CHECK: Abs\n// CHECK-LABEL: graph second")
                    == "CHECK at check line 2 ('Abs'): not found after output line 1 (output line 1: 'graph first(%x: f32[4]) -> (%y: f32[4]) {')")
    }

    @Test func checkNotBetweenMatches() {
        #expect(passes("// CHECK: Relu\n// CHECK-NOT: Relu\n// CHECK: Neg"))
        #expect(failure("// CHECK: graph first\n// CHECK-NOT: Relu\n// CHECK: Neg")
                    == "CHECK-NOT at check line 2 ('Relu'): found on line 2: '  %a: f32[4] = Relu(%x) @r'")
        #expect(failure("// CHECK-NOT: Abs") == "CHECK-NOT at check line 1 ('Abs'): found on line 7: '  %z: f32[4] = Abs(%x)'")
    }

    @Test func nextMustBeTheNextLine() {
        #expect(failure("// CHECK: Relu\n// CHECK-NEXT: return")
                    == "CHECK-NEXT at check line 2 ('return'): not found on output line 3 (output line 3: '  %y: f32[4] = Neg(%a) @n')")
    }

    @Test func casesAndExpectedErrors() {
        let file = "a\n// -----\nb {{x}}\n// expected-error {{bad thing}}\n  // -----  \n\n// -----\nc"
        #expect(FileCheck.splitCases(file) == ["a", "b {{x}}\n// expected-error {{bad thing}}", "c"])
        #expect(FileCheck.expectedErrors(in: file) == ["bad thing"])
    }
}

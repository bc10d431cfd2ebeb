import Testing
import SQIR
import SQPasses

let dceCases = """
    // CHECK-LABEL: graph remove_dead_chain
    // CHECK-NOT: Neg
    // CHECK-NOT: Abs
    // CHECK-NOT: %unused
    // CHECK: %y: f32[4] = Relu(%x)
    graph remove_dead_chain(%x: f32[4]) -> (%y: f32[4]) {
      %unused = const f32[2] [1.0, 2.0]
      %a = Neg(%x)
      %b = Abs(%a)
      %y = Relu(%x)
      return %y
    }

    // -----
    // Nothing is dead: outputs, their producers, graph inputs without uses.
    graph dont_touch_live(%x: f32[4], %unused_input: f32[4]) -> (%y: f32[4], %z: f32[4]) {
      %w = const f32[4] [1.0, 2.0, 3.0, 4.0]
      %y = Mul(%x, %w)
      %z = Neg(%y)
      return %y, %z
    }

    // -----
    // An output used only by a subgraph keeps its producer alive; a dead node inside the
    // subgraph goes, and so does the outer value only it used.
    // CHECK-LABEL: graph subgraph_uses
    // CHECK: %kept = Neg(%x)
    // CHECK-NOT: %only_dead_inside
    // CHECK: If(%c)
    // CHECK-NOT: Abs
    // CHECK: %r: f32[4] = Relu(%kept)
    graph subgraph_uses(%x: f32[4], %c: bool[]) -> (%out: f32[4]) {
      %kept = Neg(%x)
      %only_dead_inside = Sqrt(%x)
      %out = If(%c) {then_branch = 
        graph then() -> (%r: f32[4]) {
          %dead = Abs(%only_dead_inside)
          %r = Relu(%kept)
          return %r
        }
      , else_branch = 
        graph else() -> (%x2: f32[4]) {
          %x2 = Identity(%x)
          return %x2
        }
      }
      return %out
    }

    // -----
    // A whole dead If goes, with the uses its body made of outer values.
    // CHECK-LABEL: graph dead_if
    // CHECK-NOT: If
    // CHECK-NOT: Sqrt
    graph dead_if(%x: f32[4], %c: bool[]) -> (%x_out: f32[4]) {
      %s = Sqrt(%x)
      %unused = If(%c) {then_branch = 
        graph then() -> (%r: f32[4]) {
          %r = Relu(%s)
          return %r
        }
      , else_branch = 
        graph else() -> (%r2: f32[4]) {
          %r2 = Neg(%s)
          return %r2
        }
      }
      %x_out = Identity(%x)
      return %x_out
    }

    // -----
    // Nodes without outputs stay (they exist only for their effects).
    graph dont_remove_effects(%x: f32[4]) -> (%y: f32[4]) {
      custom::Print(%x)
      %y = Relu(%x)
      return %y
    }

    // -----
    // Multi-output node: live when any output is used.
    graph dont_remove_partially_used(%x: f32[4]) -> (%a: f32[2]) {
      %a, %b = Split(%x) {axis = 0, num_outputs = 2}
      return %a
    }
    """

@Suite struct DCETests {
    @Test(arguments: IRTestCase.cases(dceCases, suite: "dce", pipeline: "dce"))
    func irCases(_ testCase: IRTestCase) throws {
        try testCase.run()
    }

    @Test func countsWhatItRemoved() throws {
        let model = try IRParser().parseModel("""
            graph g(%x: f32[4]) -> (%y: f32[4]) {
              %unused = const f32[2] [1.0, 2.0]
              %a = Neg(%x)
              %y = Relu(%x)
              return %y
            }
            """)
        let report = try PassManager(pipeline: "dce", registry: testRegistry).run(on: model)
        let statistics = try #require(report.records.first?.result.statistics)
        #expect(statistics.nodesRemoved == 1)
        #expect(statistics[counter: "initializers-removed"] == 1)
        #expect(report.changed)
        let again = try PassManager(pipeline: "dce", registry: testRegistry).run(on: model)
        #expect(!again.changed)
    }
}

import Foundation
import SpecParser

extension Kernel {
    /// Bytes the kernel reads and writes once each (a lower bound on its memory traffic).
    public var bytesMoved: Int { (reads + writes).reduce(0) { $0 + $1.elements * 4 } }
}

/// Renderings of a plan for people: the model summary `mlpc check` prints, the full plan `mlpc plan`
/// prints, and a Graphviz graph. Pure functions of the plan.
public enum PlanText {
    /// Layer table, totals and the memory the arena needs.
    public static func summary(_ plan: Plan) -> String {
        var rows: [[String]] = [["layer", "kind", "output shape", "parameters"]]
        rows.append(["input", "input", shapeText(plan.inputShape), "0"])
        for layer in plan.layers {
            rows.append([layer.name, layer.kind, shapeText(layer.outputShape), grouped(layer.parameters)])
        }
        var out = "model \(plan.specName)\n"
        out += table(rows, rightAligned: [3])
        let memory = MemoryReport(plan)
        out += "total parameters: \(grouped(plan.parameterCount)) (\(grouped(plan.parameterCount * 4)) bytes as float32)\n"
        out += "memory at batch \(plan.batchSize) (one arena, exact):\n"
        let baseRows: [[String]] = [
            ["parameters", grouped(memory.parameterBytes), formatBytes(memory.parameterBytes)],
            ["gradients", grouped(memory.gradientBytes), formatBytes(memory.gradientBytes)],
            [
                "optimizer state (\(plan.optimizer.kind.rawValue), \(plan.optimizer.stateBlocks) moment\(plan.optimizer.stateBlocks == 1 ? "" : "s"))",
                grouped(memory.optimizerStateBytes), formatBytes(memory.optimizerStateBytes),
            ],
            [
                "activations and batches (shared by liveness; \(grouped(memory.activationBytesUnshared)) unshared)",
                grouped(memory.activationBytes), formatBytes(memory.activationBytes),
            ],
            [
                memory.convolutionBytes.isEmpty ? "matmul packing workspace" : "workspace (matmul packing, convolution copies and transposed dy per thread)",
                grouped(memory.workspaceBytes), formatBytes(memory.workspaceBytes),
            ],
        ]
        // The convolutional layers' own buffers, inside the activations above (before sharing), and the
        // batch norms' running statistics.
        var extraRows = memory.convolutionBytes.map { ["  of which \($0.0)", grouped($0.1), formatBytes($0.1)] }
        if memory.modelStateBytes > 0 {
            extraRows.append([
                "model state (batch norm running statistics)", grouped(memory.modelStateBytes), formatBytes(memory.modelStateBytes),
            ])
        }
        let memoryRows = Array(baseRows.prefix(4)) + extraRows + [baseRows[4], ["arena total", grouped(memory.arenaBytes), formatBytes(memory.arenaBytes)]]
        out += table(memoryRows.map { ["  " + $0[0], $0[1] + " B", $0[2]] }, rightAligned: [1, 2], header: false)
        return out
    }

    /// The whole plan: kernels in order with shapes, FLOPs, bytes, tiles and threads; the buffer table; totals.
    public static func full(_ plan: Plan) -> String {
        var out = "plan for \(plan.specName): \(plan.target.isa) kernels, \(plan.target.threads) thread\(plan.target.threads == 1 ? "" : "s") (\(plan.target.cpuName))\n\n"
        out += kernelTable("training step, batch \(plan.batchSize)", plan.trainKernels, startIndex: 0, plan: plan)
        out += "\n"
        out += kernelTable(
            "evaluation step, batch \(plan.evalBatchSize)", plan.evalKernels, startIndex: plan.trainKernels.count, plan: plan)
        out += "\nbuffers (live range over kernels 0-\(plan.trainKernels.count + plan.evalKernels.count - 1)):\n"
        var rows: [[String]] = [["buffer", "role", "type", "shape", "bytes", "offset", "live"]]
        for buffer in plan.buffers.sorted(by: { ($0.offset, $0.firstUse) < ($1.offset, $1.firstUse) }) {
            rows.append([
                buffer.name, buffer.role.rawValue, buffer.elementType.rawValue, shapeText(buffer.shape), grouped(buffer.bytes),
                grouped(buffer.offset), "\(buffer.firstUse)-\(buffer.lastUse)",
            ])
        }
        out += table(rows, rightAligned: [4, 5])
        out += "\nfusions:\n"
        for fusion in plan.fusions { out += "  - \(fusion)\n" }
        out += "\npasses (mlpc run --disable-pass NAME turns one off):\n"
        for report in plan.passes {
            out += "  \(report.applied ? "applied " : "skipped ") \(report.pass.rawValue): \(report.detail)\n"
        }
        if plan.dataParallel != nil { out += "\n" + dataParallel(plan) }
        let memory = MemoryReport(plan)
        out += "\ntotals:\n"
        out += "  arena: \(grouped(plan.arenaBytes)) bytes (\(formatBytes(plan.arenaBytes))), 64-byte aligned; without sharing the activations would need \(grouped(memory.activationBytesUnshared + plan.arenaBytes - memory.activationBytes)) bytes\n"
        out += "  training step: \(mflops(plan.trainFlopsPerStep)) MFLOP; evaluation step: \(mflops(plan.evalFlopsPerStep)) MFLOP\n"
        out += "  parameters: \(grouped(plan.parameterCount)) in \(plan.parameters.count) tensors\n"
        return out
    }

    static func kernelTable(_ title: String, _ kernels: [Kernel], startIndex: Int, plan: Plan) -> String {
        // A view of a parameter-shaped block is named after its tensor: fc1.weight, d(fc1.weight), ...
        let blocks = Dictionary(uniqueKeysWithValues: plan.buffers.filter { isPersistent($0.role) }.map { ($0.name, $0.offset) })
        // Byte offset inside a block -> the first tensor there.
        let tensorAt = Dictionary(plan.parameters.map { ($0.offset * 4, $0) }, uniquingKeysWith: { first, _ in first })
        let stateAt = Dictionary(plan.modelState.map { ($0.offset * 4, $0) }, uniquingKeysWith: { first, _ in first })
        func name(_ slice: Slice) -> String {
            if slice.buffer == "model_state", let base = blocks[slice.buffer], let tensor = stateAt[slice.offset - base] {
                return tensor.name
            }
            if let base = blocks[slice.buffer], slice.elements < plan.parameterBlockFloats,
                let tensor = tensorAt[slice.offset - base]
            {
                switch slice.buffer {
                case "parameters": return tensor.name
                case "gradients": return "d(\(tensor.name))"
                default: return "\(slice.buffer)(\(tensor.name))"
                }
            }
            return slice.description
        }
        var rows: [[String]] = [["#", "kernel", "reads -> writes", "MFLOP", "bytes", "tile (mr x nr, mc/nc/kc)", "threads", "spec"]]
        for (i, kernel) in kernels.enumerated() {
            let io = kernel.reads.map(name).joined(separator: " ") + " -> " + kernel.writes.map(name).joined(separator: " ")
            var tile = ""
            let threads = "\(kernel.threads)"
            if let m = kernel.matmul {
                tile = "\(m.tile.mr)x\(m.tile.nr), \(m.tile.mc)/\(m.tile.nc)/\(m.tile.kc)"
            } else if let algorithm = kernel.step.algorithm {
                tile = algorithm
            }
            let source = kernel.source.map { "\($0.file):\($0.line)" } ?? ""
            rows.append([
                "\(startIndex + i)", kernel.label + (kernel.step.passes.isEmpty ? "" : " [\(kernel.step.passes.joined(separator: ", "))]"), io, mflops(kernel.flops), grouped(kernel.bytesMoved), tile, threads, source,
            ])
        }
        let flops = kernels.reduce(0) { $0 + $1.flops }
        return "\(title): \(kernels.count) kernels, \(mflops(flops)) MFLOP\n" + table(rows, rightAligned: [0, 3, 4, 6])
    }

    /// Graphviz: kernels as boxes, buffers as ellipses, edges for reads and writes.
    public static func dot(_ plan: Plan) -> String {
        var out = "digraph \"\(plan.specName)\" {\n  rankdir=TB;\n  node [fontname=\"Helvetica\", fontsize=10];\n"
        var bufferNodes = Set<String>()
        func bufferNode(_ name: String) -> String {
            let id = "b_" + name.map { $0.isLetter || $0.isNumber ? String($0) : "_" }.joined()
            if !bufferNodes.contains(id) {
                bufferNodes.insert(id)
                let bytes = plan.buffer(named: name).map { grouped($0.bytes) + " B" } ?? ""
                out += "  \(id) [shape=ellipse, label=\"\(name)\\n\(bytes)\"];\n"
            }
            return id
        }
        for (phase, kernels, start) in [("train", plan.trainKernels, 0), ("eval", plan.evalKernels, plan.trainKernels.count)] {
            out += "  subgraph cluster_\(phase) {\n    label=\"\(phase == "train" ? "training step" : "evaluation")\";\n"
            for (i, kernel) in kernels.enumerated() {
                out += "    k\(start + i) [shape=box, style=filled, fillcolor=\"#dde8f8\", label=\"\(start + i): \(kernel.label)\\n\(mflops(kernel.flops)) MFLOP\"];\n"
            }
            out += "  }\n"
            for (i, kernel) in kernels.enumerated() {
                for slice in kernel.reads { out += "  \(bufferNode(slice.buffer)) -> k\(start + i);\n" }
                for slice in kernel.writes { out += "  k\(start + i) -> \(bufferNode(slice.buffer));\n" }
            }
        }
        out += "}\n"
        return out
    }

    public static func json(_ plan: Plan) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        guard let data = try? encoder.encode(plan), let text = String(data: data, encoding: .utf8) else { return "{}" }
        return text + "\n"
    }
}

/// 109386 -> "109,386".
public func grouped(_ value: Int) -> String {
    let digits = String(value.magnitude)
    var out = ""
    for (i, c) in digits.enumerated() {
        if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
        out.append(c)
    }
    return value < 0 ? "-" + out : out
}

func mflops(_ flops: Int) -> String { String(format: "%.2f", Double(flops) / 1e6) }

/// Left-aligned columns separated by two spaces; the given columns right-aligned.
func table(_ rows: [[String]], rightAligned: Set<Int> = [], header: Bool = true) -> String {
    guard let columns = rows.map(\.count).max() else { return "" }
    var widths = [Int](repeating: 0, count: columns)
    for row in rows {
        for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) }
    }
    var out = ""
    for (r, row) in rows.enumerated() {
        var line = ""
        for (i, cell) in row.enumerated() {
            let pad = String(repeating: " ", count: widths[i] - cell.count)
            line += (i == 0 ? "" : "  ") + (rightAligned.contains(i) ? pad + cell : cell + (i == row.count - 1 ? "" : pad))
        }
        out += line + "\n"
        if header && r == 0 {
            out += widths.enumerated().map { String(repeating: "-", count: $0.element) }.joined(separator: "  ") + "\n"
        }
    }
    return out
}

import KernelInterface
import SpecParser

/// Assigns every buffer its live range and its arena offset, then rewrites each kernel's slices to
/// absolute offsets. Like ggml-alloc: a buffer's bytes are reused as soon as its last reader has run.
///
/// The timeline is the training kernels followed by the evaluation kernels, so evaluation reuses the
/// bytes of the training step's activations. Parameters, gradients, optimizer state and the packing
/// workspace are persistent. With a batch prefetch, both batch pairs live through the whole training
/// step: one holds this step's batch, the other receives the next one.
func allocateArena(_ plan: inout Plan) {
    let timeline = plan.trainKernels + plan.evalKernels
    let end = max(timeline.count - 1, 0)
    var first: [String: Int] = [:]
    var last: [String: Int] = [:]
    for (index, kernel) in timeline.enumerated() {
        for slice in kernel.reads + kernel.writes {
            first[slice.buffer] = min(first[slice.buffer] ?? index, index)
            last[slice.buffer] = max(last[slice.buffer] ?? index, index)
        }
    }
    let alternating = plan.alternatingBatchBuffers
    for i in plan.buffers.indices {
        let buffer = plan.buffers[i]
        if alternating.contains(buffer.name) {
            plan.buffers[i].firstUse = 0
            plan.buffers[i].lastUse = max(plan.trainKernels.count - 1, 0)
        } else if isPersistent(buffer.role) {
            plan.buffers[i].firstUse = 0
            plan.buffers[i].lastUse = end
        } else {
            plan.buffers[i].firstUse = first[buffer.name] ?? 0
            plan.buffers[i].lastUse = last[buffer.name] ?? 0
        }
    }

    // Persistent buffers first, in declaration order (so parameters sit at offset 0), then the rest by size,
    // largest first, each at the lowest aligned offset free during its whole live range.
    let order = plan.buffers.indices.sorted { a, b in
        let pa = isPersistent(plan.buffers[a].role), pb = isPersistent(plan.buffers[b].role)
        if pa != pb { return pa }
        if pa { return a < b }
        if plan.buffers[a].bytes != plan.buffers[b].bytes { return plan.buffers[a].bytes > plan.buffers[b].bytes }
        return a < b
    }
    // Each buffer goes at the lowest aligned offset clear of every placed buffer live at the same time:
    // the placed buffers are kept sorted by offset, and the scan stops at the first one that starts
    // above the gap found (none after it can move the gap). Plain integers, no copies of buffers per
    // placement, so a plan of tens of thousands of buffers places in well under a second.
    struct Placed {
        var offset: Int
        var end: Int
        var firstUse: Int
        var lastUse: Int
    }
    var placed: [Placed] = []
    placed.reserveCapacity(plan.buffers.count)
    var arenaBytes = 0
    for i in order {
        let buffer = plan.buffers[i]
        let bytes = buffer.bytes, firstUse = buffer.firstUse, lastUse = buffer.lastUse
        let offset = placed.withUnsafeBufferPointer { placed in
            var offset = 0
            var k = 0
            while k < placed.count {
                let other = placed[k]
                if offset + bytes <= other.offset { break }
                if other.firstUse <= lastUse && firstUse <= other.lastUse {
                    offset = max(offset, roundUp(other.end, to: arenaAlignmentBytes))
                }
                k += 1
            }
            return offset
        }
        plan.buffers[i].offset = offset
        // After every placed buffer at the same offset (ties keep the order of placement).
        var low = 0, high = placed.count
        while low < high {
            let middle = (low + high) / 2
            if placed[middle].offset <= offset { low = middle + 1 } else { high = middle }
        }
        placed.insert(Placed(offset: offset, end: offset + bytes, firstUse: firstUse, lastUse: lastUse), at: low)
        arenaBytes = max(arenaBytes, roundUp(offset + bytes, to: arenaAlignmentBytes))
    }
    plan.arenaBytes = arenaBytes

    var base: [String: Int] = [:]
    for buffer in plan.buffers { base[buffer.name] = buffer.offset }
    let relocate = { (slice: Slice) -> Slice in
        var moved = slice
        moved.offset += base[slice.buffer] ?? 0
        return moved
    }
    plan.trainKernels = plan.trainKernels.map { $0.mapSlices(relocate) }
    plan.evalKernels = plan.evalKernels.map { $0.mapSlices(relocate) }
    if let prefetch = plan.batchPrefetch {
        plan.batchPrefetch = BatchPrefetch(input: relocate(prefetch.input), labels: relocate(prefetch.labels), overlaps: prefetch.overlaps)
    }
}

/// A batch prefetch's second pair matches the gather's pair in shape and type and lies inside its own
/// buffers; both pairs live through the whole training step; every kernel of the window runs on one
/// thread (the other threads run the gather) and none of them touches the second pair.
func verifyBatchPrefetch(_ plan: Plan, _ byName: [String: Buffer]) -> [PlanViolation] {
    guard let prefetch = plan.batchPrefetch else { return [] }
    var violations: [PlanViolation] = []
    func fail(_ text: String) { violations.append(PlanViolation(description: "batch prefetch: " + text)) }
    guard let batch = plan.trainingBatch else {
        fail("the training step does not start with a gather")
        return violations
    }
    for (spare, used) in [(prefetch.input, batch.input), (prefetch.labels, batch.labels)] {
        guard let buffer = byName[spare.buffer], let usedBuffer = byName[used.buffer] else {
            fail("unknown buffer \(spare.buffer)")
            continue
        }
        if spare.buffer == used.buffer { fail("\(spare.buffer) is the buffer the gather writes") }
        if spare.shape != used.shape || buffer.elementType != usedBuffer.elementType {
            fail("\(spare.buffer) is not shaped like \(used.buffer)")
        }
        if spare.offset != buffer.offset || spare.elements > buffer.elements {
            fail("its slice of \(spare.buffer) is not the buffer")
        }
        for b in [buffer, usedBuffer] where b.firstUse != 0 || b.lastUse < plan.trainKernels.count - 1 {
            fail("\(b.name) does not live through the training step")
        }
    }
    let window = prefetch.overlaps
    if window.isEmpty || window.lowerBound < 1 || window.upperBound > plan.trainKernels.count {
        fail("its window \(window) is not a range of the training kernels after the gather")
        return violations
    }
    for index in window {
        let kernel = plan.trainKernels[index]
        if kernel.threads != 1 { fail("kernel \(index) (\(kernel.label)) runs on more than one thread") }
        for slice in kernel.reads + kernel.writes where slice.buffer == prefetch.input.buffer || slice.buffer == prefetch.labels.buffer {
            fail("kernel \(index) (\(kernel.label)) uses \(slice.buffer)")
        }
    }
    return violations
}

func isPersistent(_ role: Buffer.Role) -> Bool {
    switch role {
    case .parameters, .gradients, .optimizerState, .workspace, .modelState: return true
    case .input, .labels, .activation, .activationGradient, .preactivation, .mask, .lossScratch, .predictions, .poolIndices,
        .statistics, .foldedWeights:
        return false
    }
}

/// Problems a plan can have, found by `verify`: each names the buffers or the kernel at fault.
public struct PlanViolation: Equatable, CustomStringConvertible {
    public var description: String
}

/// Checks a plan's invariants: buffers live at the same time never overlap, every buffer and slice lies
/// inside the arena and inside its buffer, offsets are aligned, and every slice a kernel reads was
/// written before (or is persistent). Runs after planning in tests and debug builds.
public func verify(_ plan: Plan) -> [PlanViolation] {
    var violations: [PlanViolation] = []
    let buffers = plan.buffers
    var byName: [String: Buffer] = [:]
    for buffer in buffers {
        if byName[buffer.name] != nil { violations.append(PlanViolation(description: "buffer \(buffer.name) declared twice")) }
        byName[buffer.name] = buffer
        if buffer.offset % arenaAlignmentBytes != 0 {
            violations.append(PlanViolation(description: "buffer \(buffer.name) at offset \(buffer.offset) is not 64-byte aligned"))
        }
        if buffer.offset < 0 || buffer.offset + buffer.bytes > plan.arenaBytes {
            violations.append(PlanViolation(description: "buffer \(buffer.name) lies outside the arena"))
        }
    }
    // Pairs that overlap in the arena, found in offset order (each buffer against those starting
    // before it ends), then reported in declaration order.
    let byOffset = buffers.indices.filter { buffers[$0].bytes > 0 }.sorted {
        (buffers[$0].offset, $0) < (buffers[$1].offset, $1)
    }
    var clashes: [(Int, Int)] = []
    let spans = byOffset.map { (offset: buffers[$0].offset, end: buffers[$0].offset + buffers[$0].bytes, first: buffers[$0].firstUse, last: buffers[$0].lastUse) }
    for p in spans.indices {
        var q = p + 1
        while q < spans.count && spans[q].offset < spans[p].end {
            if spans[p].first <= spans[q].last && spans[q].first <= spans[p].last {
                let i = byOffset[p], j = byOffset[q]
                clashes.append((min(i, j), max(i, j)))
            }
            q += 1
        }
    }
    for (i, j) in clashes.sorted(by: { $0 < $1 }) {
        let a = buffers[i], b = buffers[j]
        violations.append(
            PlanViolation(
                description: "buffers \(a.name) [\(a.firstUse), \(a.lastUse)] and \(b.name) [\(b.firstUse), \(b.lastUse)] are live together and overlap"))
    }
    let timeline = plan.trainKernels + plan.evalKernels
    var written: Set<String> = Set(buffers.filter { isPersistent($0.role) }.map(\.name))
    violations += verifyBatchPrefetch(plan, byName)
    for (index, kernel) in timeline.enumerated() {
        for slice in kernel.reads + kernel.writes {
            guard let buffer = byName[slice.buffer] else {
                violations.append(PlanViolation(description: "kernel \(index) (\(kernel.label)) uses unknown buffer \(slice.buffer)"))
                continue
            }
            if slice.offset < buffer.offset || slice.offset + slice.elements * 4 > buffer.offset + buffer.bytes {
                violations.append(PlanViolation(description: "kernel \(index) (\(kernel.label)) has a slice outside \(buffer.name)"))
            }
            if slice.shape.reduce(1, *) != slice.elements {
                violations.append(PlanViolation(description: "kernel \(index) (\(kernel.label)) has a slice whose shape disagrees with its length"))
            }
            if index < buffer.firstUse || index > buffer.lastUse {
                violations.append(PlanViolation(description: "kernel \(index) (\(kernel.label)) uses \(buffer.name) outside its live range"))
            }
        }
        for slice in kernel.reads where !written.contains(slice.buffer) {
            violations.append(PlanViolation(description: "kernel \(index) (\(kernel.label)) reads \(slice.buffer) before anything writes it"))
        }
        for slice in kernel.writes { written.insert(slice.buffer) }
    }
    return violations
}

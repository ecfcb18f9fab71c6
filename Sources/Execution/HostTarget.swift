import Files
import DataSources
import Foundation
import KernelInterface
import Planner
import SpecParser

/// Reads the machine this process runs on: cores, caches, memory, CPU name and the best kernel set.
public func hostTarget(threads requested: Int? = nil, isa: KernelISA) -> Target {
    let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)
    let memory = Int(clamping: ProcessInfo.processInfo.physicalMemory)
    return Target(
        isa: isa, threads: requested ?? cores, l2Bytes: cacheSize(level: 2) ?? 512 * 1024, memoryBytes: memory, cpuName: cpuModelName() ?? "unknown CPU")
}

/// The one way from a spec to a plan for this machine, used by the command line and by model files
/// alike: the host's target with `threads` (else the spec's training.threads, else every core) and
/// the planner with `options`.
public func planForHost(
    _ spec: Spec, threads: Int?, isa: KernelISA, options: PlanOptions = PlanOptions()
) -> (plan: Plan?, diagnostics: [Diagnostic]) {
    makePlan(spec, target: hostTarget(threads: threads ?? spec.training.threads?.value, isa: isa), options: options)
}

/// From /proc/cpuinfo's "model name" (Linux); nil elsewhere.
public func cpuModelName() -> String? {
    guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return nil }
    for line in text.split(separator: "\n") where line.hasPrefix("model name") {
        if let colon = line.firstIndex(of: ":") {
            return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
    }
    return nil
}

/// Data or unified cache size of CPU 0 at `level`, from sysfs ("48K", "1024K", "32M").
func cacheSize(level: Int) -> Int? {
    for index in 0..<8 {
        let dir = "/sys/devices/system/cpu/cpu0/cache/index\(index)"
        guard let lvl = try? String(contentsOfFile: dir + "/level", encoding: .utf8),
            Int(lvl.trimmingCharacters(in: .whitespacesAndNewlines)) == level,
            let type = try? String(contentsOfFile: dir + "/type", encoding: .utf8),
            type.trimmingCharacters(in: .whitespacesAndNewlines) != "Instruction",
            let size = try? String(contentsOfFile: dir + "/size", encoding: .utf8)
        else { continue }
        let text = size.trimmingCharacters(in: .whitespacesAndNewlines)
        let multiplier = text.hasSuffix("K") ? 1024 : text.hasSuffix("M") ? 1024 * 1024 : 1
        if let value = Int(text.trimmingCharacters(in: CharacterSet.decimalDigits.inverted)) { return value * multiplier }
    }
    return nil
}

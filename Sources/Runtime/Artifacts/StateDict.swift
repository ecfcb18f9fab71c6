import Figures
import Files
import DataSources
import Execution
import Foundation
import KernelInterface
import Planner
import SpecParser

// PyTorch's state_dict as safetensors: one tensor per parameter, named and shaped as PyTorch names and
// shapes it (`fc1.weight` [out, in], `fc1.bias` [out]), row-major float32. mlpc keeps weights in panels of
// 32 output features in one parameter block (`ParameterTensor.storedIndex` maps PyTorch's element to its
// place), so writing and reading are copies through that map and a round trip is bit-exact.

/// A problem loading tensors into a plan's parameter block: a tensor missing, extra, of the wrong shape,
/// or not finite. Names the file, and for a shape mismatch the spec line the layer comes from.
public struct StateDictError: Error, CustomStringConvertible, Equatable {
    public var path: String
    public var problems: [String]

    public init(path: String, problems: [String]) {
        self.path = path
        self.problems = problems
    }

    public var description: String {
        if problems.count == 1 { return "\(pathForMessage(path)): \(problems[0])" }
        return "\(pathForMessage(path)): the tensors do not fit the model:\n" + problems.map { "  " + $0 }.joined(separator: "\n")
    }
}

/// The tensors of one parameter-shaped block (the parameters, or an optimizer moment), PyTorch-named
/// with `prefix` in front (`exp_avg.fc1.weight`), in PyTorch's layout.
/// With `modelState` (the parameter block's state_dict), the model's state tensors follow, read from
/// it: batch norm's `running_mean`, `running_var` and `num_batches_tracked` (a scalar, int64 as in PyTorch).
public func stateDictTensors(
    plan: Plan, block: UnsafePointer<Float>, prefix: String = "", modelState: UnsafePointer<Float>? = nil
) -> [SafetensorsTensor] {
    var tensors = plan.parameters.map { tensor in
        SafetensorsTensor(name: prefix + tensor.name, shape: tensor.shape, values: pyTorchOrderValues(of: tensor, in: block))
    }
    if let modelState {
        for tensor in plan.modelState {
            tensors.append(
                SafetensorsTensor(
                    name: prefix + tensor.name, shape: tensor.shape,
                    values: Array(UnsafeBufferPointer(start: modelState + tensor.offset, count: tensor.count)),
                    dtype: tensor.role == .batchesTracked ? .i64 : .f32))
        }
    }
    return tensors
}

/// The tensor's values in PyTorch's row-major order, read from where the block stores them (a weight in
/// panels: `ParameterTensor.storedIndex`, one output row at a time; a checkpoint reads three blocks of
/// them every epoch).
func pyTorchOrderValues(of tensor: ParameterTensor, in block: UnsafePointer<Float>) -> [Float] {
    let base = block + tensor.offset
    guard tensor.role == .weight, tensor.shape.count == 2 else { return (0..<tensor.count).map { base[tensor.storedIndex($0)] } }
    let outFeatures = tensor.shape[0], inFeatures = tensor.shape[1]
    return [Float](unsafeUninitializedCapacity: outFeatures * inFeatures) { values, initialized in
        for output in 0..<outFeatures {
            let row = base + WeightPanels.offset(output: output, input: 0, inFeatures: inFeatures)
            let destination = output * inFeatures
            for input in 0..<inFeatures { values[destination + input] = row[input * weightPanelWidth] }
        }
        initialized = outFeatures * inFeatures
    }
}

/// Checks that `file` holds exactly the tensors `prefixes` name for the plan's parameters (each
/// PyTorch-named and shaped, finite) and no others; every problem is reported, not just the first.
public func checkStateDict(_ file: SafetensorsFile, path: String, plan: Plan, prefixes: [String] = [""]) throws {
    var problems: [String] = []
    var expected = Set<String>()
    for prefix in prefixes {
        // The model's state belongs to the parameters' state_dict (prefix ""), not to optimizer moments.
        let stateTensors = prefix.isEmpty ? plan.modelState.map { ($0.name, $0.shape, $0.location, $0.role) } : []
        for (name, shape, location, role) in stateTensors {
            expected.insert(name)
            guard let found = file.tensor(named: name) else {
                problems.append("\(name) is missing (\(lineText(location)) declares it, \(shapeText(shape)))")
                continue
            }
            if found.shape != shape {
                problems.append("\(name): the file has \(shapeText(found.shape)), \(lineText(location)) says \(shapeText(shape))")
            }
            // A count is int64 (PyTorch's type); files written before mlpc wrote it so hold F32.
            if found.dtype != .f32 && role != .batchesTracked {
                problems.append("\(name): the file has \(found.dtype.rawValue) values, expected F32")
            }
        }
        for tensor in plan.parameters {
            let name = prefix + tensor.name
            expected.insert(name)
            guard let found = file.tensor(named: name) else {
                problems.append("\(name) is missing (\(lineText(tensor.location)) declares it, \(shapeText(tensor.shape)))")
                continue
            }
            if found.shape != tensor.shape {
                problems.append("\(name): the file has \(shapeText(found.shape)), \(lineText(tensor.location)) says \(shapeText(tensor.shape))")
            }
            if found.dtype != .f32 {
                problems.append("\(name): the file has \(found.dtype.rawValue) values, expected F32")
            }
        }
    }
    for tensor in file.tensors where !expected.contains(tensor.name) {
        // The name comes from the file: escaped, so a hostile name cannot drive the terminal.
        problems.append("\(escapedForMessage(tensor.name)) \(shapeText(tensor.shape)) is not a parameter of the model")
    }
    guard problems.isEmpty else { throw StateDictError(path: path, problems: problems) }
    try file.requireFinite(path: path)
}

/// Fills a parameter-shaped block from the file's tensors named `prefix` + each parameter's name, after
/// `checkStateDict` accepted the file. The block's padding becomes zero.
public func loadStateDict(
    _ file: SafetensorsFile, path: String, plan: Plan, prefix: String = "", into block: UnsafeMutablePointer<Float>,
    modelState: UnsafeMutablePointer<Float>? = nil
) throws {
    try checkStateDict(file, path: path, plan: plan, prefixes: [prefix])
    fillBlock(file, plan: plan, prefix: prefix, into: block, modelState: modelState)
}

/// Copies the (checked) tensors into the block, weights into their panels.
/// With `modelState`, the model's state tensors are copied into it too.
func fillBlock(
    _ file: SafetensorsFile, plan: Plan, prefix: String, into block: UnsafeMutablePointer<Float>,
    modelState: UnsafeMutablePointer<Float>? = nil
) {
    if let modelState {
        for tensor in plan.modelState {
            guard let found = file.tensor(named: prefix + tensor.name), found.values.count == tensor.count else { continue }
            (modelState + tensor.offset).update(from: found.values, count: tensor.count)
        }
    }
    block.update(repeating: 0, count: plan.parameterBlockFloats)
    for tensor in plan.parameters {
        guard let found = file.tensor(named: prefix + tensor.name), found.values.count == tensor.count else { continue }
        let base = block + tensor.offset
        for index in 0..<tensor.count { base[tensor.storedIndex(index)] = found.values[index] }
    }
}

/// "spec.yaml:14", the way the messages point at the line a layer is declared on.
func lineText(_ location: SourceLocation) -> String { "\(location.file):\(location.line)" }

/// Loads the parameters of a weights or model file (a state_dict that fits `plan`) into `executor`, as
/// `mlpc bench --weights` starts from a trained network. A file that cannot be read throws
/// `FileAccessError`; one that is damaged or does not fit the plan throws an error naming it.
public func loadParameters(path: String, plan: Plan, into executor: StepExecutor) throws {
    let file = try readSafetensors(path: path, what: "weights file")
    try loadStateDict(file, path: path, plan: plan, into: executor.parameters, modelState: executor.modelState)
}

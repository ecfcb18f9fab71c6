import Foundation

/// The spec with every default written out and the data directory made absolute: what a run actually
/// used. It is itself a valid spec (the run directory's copy and the model file carry it); loading it
/// from anywhere gives back the same values and the same text, so its SHA-256 identifies a run's spec.
extension Spec {
    public var resolvedYAML: String {
        var out = "# mlpc resolved spec: every default written out, the data directory absolute.\n"
        out += "name: \(quoted(name.value))\n"
        out += "seed: \(seed.value)\n"
        out += "data:\n"
        if let table = data.table {
            out += tableYAML(table)
        } else {
            out += "  dir: \(quoted(absolutePath(data.resolvedDirectory)))\n"
            out += "  normalize: {mean: \(number(data.mean.value)), std: \(number(data.std.value))}\n"
        }
        out += "  validation_fraction: \(number(data.validationFraction.value))\n"
        out += "model:\n"
        if !model.inputShape.value.isEmpty { out += "  input_shape: [\(model.inputShape.value.map(String.init).joined(separator: ", "))]\n" }
        out += "  layers:\n"
        for layer in model.layers {
            let name = layer.name.value
            switch layer.kind {
            case .flatten:
                out += "    - flatten: {name: \(name)}\n"
            case .linear(let linear):
                var fields = [
                    "out: \(linear.outFeatures.value)", "bias: \(linear.bias.value)", "init: \(linear.initialization.value.rawValue)",
                ]
                if let activation = linear.activation {
                    // Inside the linear's flow mapping an activation with parameters is a mapping of its own.
                    let yaml = activationYAML(activation.value, name: nil)
                    fields.append("activation: " + (yaml.contains(":") ? "{\(yaml)}" : yaml))
                }
                fields.append("name: \(name)")
                out += "    - linear: {\(fields.joined(separator: ", "))}\n"
            case .activation(let activation):
                out += "    - \(activationYAML(activation.value, name: name))\n"
            case .dropout(let p):
                out += "    - dropout: {p: \(number(p.value)), name: \(name)}\n"
            case .conv2d(let conv):
                var fields = [
                    "out: \(conv.outChannels.value)", "kernel: \(pairYAML(conv.kernel.value))", "stride: \(pairYAML(conv.stride.value))",
                ]
                switch conv.padding.value {
                case .same: fields.append("padding: same")
                case .explicit(let pair): fields.append("padding: \(pairYAML(pair))")
                }
                fields += [
                    "dilation: \(pairYAML(conv.dilation.value))", "groups: \(conv.groups.value)", "bias: \(conv.bias.value)",
                    "init: \(conv.initialization.value.rawValue)",
                ]
                if let activation = conv.activation {
                    let yaml = activationYAML(activation.value, name: nil)
                    fields.append("activation: " + (yaml.contains(":") ? "{\(yaml)}" : yaml))
                }
                fields.append("name: \(name)")
                out += "    - conv2d: {\(fields.joined(separator: ", "))}\n"
            case .pool2d(let pool):
                let kind = pool.kind == .max ? "max_pool2d" : "avg_pool2d"
                // The options PyTorch added later appear only when set, so older specs resolve as before.
                var extra = ""
                if pool.dilation.value != .square(1) { extra += ", dilation: \(pairYAML(pool.dilation.value))" }
                if !pool.countIncludePad.value { extra += ", count_include_pad: false" }
                out += "    - \(kind): {kernel: \(pairYAML(pool.kernel.value)), stride: \(pairYAML(pool.stride.value)), padding: \(pairYAML(pool.padding.value)), ceil_mode: \(pool.ceilMode.value)\(extra), name: \(name)}\n"
            case .adaptiveAveragePool2d(let size):
                out += "    - adaptive_avg_pool2d: {output_size: \(size.value.text), name: \(name)}\n"
            case .batchNorm(let bn):
                let momentum = bn.momentum.map { number($0.value) } ?? "null"
                out += "    - batch_norm: {eps: \(number(bn.eps.value)), momentum: \(momentum), affine: \(bn.affine.value), name: \(name)}\n"
            }
        }
        out += "loss: \(loss.kind.value.rawValue)\n"
        out += "optimizer:\n"
        out += "  kind: \(optimizer.kind.value.rawValue)\n"
        out += "  lr: \(number(optimizer.lr.value))\n"
        switch optimizer.kind.value {
        case .sgd:
            out += "  momentum: \(number(optimizer.momentum.value))\n"
            out += "  dampening: \(number(optimizer.dampening.value))\n"
            out += "  nesterov: \(optimizer.nesterov.value)\n"
        case .adam, .adamw:
            out += "  betas: [\(number(optimizer.beta1.value)), \(number(optimizer.beta2.value))]\n"
            out += "  eps: \(number(optimizer.eps.value))\n"
        }
        out += "  weight_decay: \(number(optimizer.weightDecay.value))\n"
        out += "training:\n"
        out += "  batch_size: \(training.batchSize.value)\n"
        out += "  epochs: \(training.epochs.value)\n"
        out += "  shuffle: \(training.shuffle.value)\n"
        out += "  drop_last: \(training.dropLast.value)\n"
        if let threads = training.threads { out += "  threads: \(threads.value)\n" }
        out += "  eval_batch_size: \(training.evalBatchSize.value)\n"
        return out
    }
}

/// The `data` lines of a table spec (all but validation_fraction), files absolute.
private func tableYAML(_ table: TableSpec) -> String {
    var out = "  format: csv\n"
    out += "  train: \(quoted(absolutePath(table.resolvedTrain)))\n"
    if let test = table.resolvedTest { out += "  test: \(quoted(absolutePath(test)))\n" }
    if let fraction = table.testFraction { out += "  test_fraction: \(number(fraction.value))\n" }
    let targets = table.target.columns.map { quoted($0.value) }.joined(separator: ", ")
    out += "  target: {columns: [\(targets)], type: \(table.target.type.value.rawValue)}\n"
    if let columns = table.columns {
        out += "  columns:\n"
        for column in columns {
            var fields = ["type: \(column.type.value.rawValue)", "missing: \(column.missing.value.specName)"]
            if case .constant(let value) = column.missing.value { fields.append("value: \(quoted(value))") }
            out += "    \(quoted(column.name.value)): {\(fields.joined(separator: ", "))}\n"
        }
    }
    if !table.ignore.isEmpty { out += "  ignore: [\(table.ignore.map { quoted($0.value) }.joined(separator: ", "))]\n" }
    let delimiter = table.delimiter.value == 0x09 ? "\\t" : String(UnicodeScalar(table.delimiter.value))
    out += "  delimiter: \(quoted(delimiter))\n"
    if !table.missingValues.isEmpty { out += "  missing_values: [\(table.missingValues.map { quoted($0.value) }.joined(separator: ", "))]\n" }
    out += "  header: \(table.header.value)\n"
    return out
}

/// `path` made absolute against the working directory, with `.` and `..` components removed.
public func absolutePath(_ path: String) -> String {
    let url = path.hasPrefix("/") ? URL(fileURLWithPath: path) : URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(path)
    return url.standardizedFileURL.path
}

private func pairYAML(_ pair: SpatialPair) -> String { "[\(pair.height), \(pair.width)]" }

private func activationYAML(_ activation: Activation, name: String?) -> String {
    var fields: [String] = []
    switch activation {
    case .leakyRelu(let slope): fields.append("negative_slope: \(number(slope))")
    case .gelu(let tanh): fields.append("approximate: \(tanh ? "tanh" : "none")")
    case .relu, .sigmoid, .tanh: break
    }
    if let name { fields.append("name: \(name)") }
    return fields.isEmpty ? activation.specName : "\(activation.specName): {\(fields.joined(separator: ", "))}"
}

/// Shortest text that reads back as the same Double (Swift's description), always with a digit form YAML
/// reads as a number.
private func number(_ value: Double) -> String {
    if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
    return "\(value)"
}

private func quoted(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        default:
            if scalar.value < 0x20 {
                let hex = String(scalar.value, radix: 16, uppercase: true)
                out += "\\x" + (hex.count < 2 ? "0" + hex : hex)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out + "\""
}

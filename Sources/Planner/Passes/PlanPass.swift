/// The optional passes over a plan. Each replaces kernels by named variants (or adds a buffer pair)
/// for speed; the plan records which applied and why the others did not, and `mlpc run`/`mlpc bench`
/// (`--disable-pass NAME`) can turn each off. `shifted-input` changes rounding (the shift is summed
/// apart from the pixels) and `fold-batch-norm` the evaluation's rounding (the batch norm's scale is
/// applied to the weights); the others give the same bits on or off.
public enum PlanPass: String, Codable, CaseIterable, Sendable, Comparable {
    case shiftedInput = "shifted-input"
    case sparseInput = "sparse-input"
    case poolReluBackward = "pool-relu-backward"
    case batchPrefetch = "batch-prefetch"
    case liveFirstFeatures = "live-first-features"
    case foldBatchNorm = "fold-batch-norm"

    public static func < (a: PlanPass, b: PlanPass) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }

    /// What the pass does, for `mlpc plan` and the help text.
    public var summary: String {
        switch self {
        case .shiftedInput:
            return "fold the input normalization's shift into the first linear layer (changes rounding, not the model)"
        case .sparseInput: return "let that layer's products loop over the nonzero inputs of a sparse batch (same bits)"
        case .poolReluBackward: return "apply a ReLU's backward pass in the max pool backward after it (same bits)"
        case .batchPrefetch: return "gather the next batch on another thread while kernels run on one (same bits)"
        case .liveFirstFeatures: return "store the first layer's live features first during an epoch (same bits)"
        case .foldBatchNorm:
            return "fold an evaluation batch norm into the convolution or linear layer before it (evaluation rounds otherwise; training unchanged)"
        }
    }
}

/// The choices a plan is made with, beyond the spec and the target.
public struct PlanOptions: Codable, Equatable, Sendable {
    /// Passes turned off (`--disable-pass`).
    public var disabledPasses: Set<PlanPass>
    /// Processes that train the model together (`mpirun -np N`, `mlpc plan --ranks N`): each runs
    /// its share of every batch (`Plan.dataParallel`).
    public var ranks: Int

    public init(disabledPasses: Set<PlanPass> = [], ranks: Int = 1) {
        self.disabledPasses = disabledPasses
        self.ranks = max(1, ranks)
    }

    enum CodingKeys: String, CodingKey { case disabledPasses, ranks }

    /// Plans written before ranks existed are one-process plans.
    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        disabledPasses = try container.decode(Set<PlanPass>.self, forKey: .disabledPasses)
        ranks = max(1, try container.decodeIfPresent(Int.self, forKey: .ranks) ?? 1)
    }

    /// A one-process plan's JSON stays as it was before ranks existed.
    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(disabledPasses, forKey: .disabledPasses)
        if ranks > 1 { try container.encode(ranks, forKey: .ranks) }
    }
}

/// Whether a pass applied, and what it did or why it did not.
public struct PassReport: Codable, Equatable, Sendable {
    public var pass: PlanPass
    public var applied: Bool
    public var detail: String

    public init(pass: PlanPass, applied: Bool, detail: String) {
        self.pass = pass
        self.applied = applied
        self.detail = detail
    }
}

/// Where a plan's samples come from.
public struct DataSource: Codable, Equatable, Sendable {
    public enum Format: String, Codable, Sendable {
        /// MNIST's four IDX files (gzipped or not) in one directory.
        case idx
        /// A CSV table (`directory` is then the training file).
        case csv
    }
    public var format: Format
    /// The directory, resolved (the spec's data.dir relative to the spec, or --data-dir).
    public var directory: String

    public init(format: Format, directory: String) {
        self.format = format
        self.directory = directory
    }
}

/// How training walks the data, from the spec's training and data sections.
public struct TrainingSchedule: Codable, Equatable, Sendable {
    /// A new permutation of the training examples each epoch (from the seed and the epoch).
    public var shuffle: Bool
    /// Whether a partial last batch is skipped.
    public var dropLast: Bool
    /// The share of the training file held out for validation.
    public var validationFraction: Double

    public init(shuffle: Bool, dropLast: Bool, validationFraction: Double) {
        self.shuffle = shuffle
        self.dropLast = dropLast
        self.validationFraction = validationFraction
    }
}

/// Runs the optional passes in order, each unless the plan's options turn it off, and records a
/// report for every one.
func runPasses(_ plan: inout Plan) {
    for pass in PlanPass.allCases {
        guard !plan.options.disabledPasses.contains(pass) else {
            plan.passes.append(PassReport(pass: pass, applied: false, detail: "turned off (--disable-pass \(pass.rawValue))"))
            continue
        }
        let outcome: Result<String, PassSkipped>
        switch pass {
        case .shiftedInput: outcome = addShiftedInput(&plan)
        case .sparseInput: outcome = addSparseInput(&plan)
        case .poolReluBackward: outcome = addPoolReluBackward(&plan)
        case .batchPrefetch: outcome = addBatchPrefetch(&plan)
        case .liveFirstFeatures: outcome = addLiveFirstFeatures(&plan)
        case .foldBatchNorm: outcome = addBatchNormFold(&plan)
        }
        switch outcome {
        case .success(let detail): plan.passes.append(PassReport(pass: pass, applied: true, detail: detail))
        case .failure(let skipped): plan.passes.append(PassReport(pass: pass, applied: false, detail: skipped.reason))
        }
    }
}

/// Why a pass did not apply.
struct PassSkipped: Error {
    var reason: String
    init(_ reason: String) { self.reason = reason }
}

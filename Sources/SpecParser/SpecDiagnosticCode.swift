/// The stable codes of the diagnostics the spec front end reports (E0100-E0199 errors, W0100-W0199
/// warnings). docs/spec-reference.md documents each one with an example; a test keeps the two in step.
public enum SpecDiagnosticCode: String, CaseIterable, Sendable {
    // Reading the YAML (one fatal problem ends reading).
    case yamlSyntax = "E0100"
    case notText = "E0101"
    case emptySpec = "E0102"
    case multipleDocuments = "E0103"
    case anchorOrAlias = "E0104"
    case nestingTooDeep = "E0105"
    case tag = "E0106"
    case nonScalarKey = "E0107"
    case duplicateKey = "E0108"
    case tooManyErrors = "E0109"
    // Decoding the tree into a Spec (all problems are collected).
    case unknownKey = "E0120"
    case missingKey = "E0121"
    case wrongType = "E0122"
    case outOfRange = "E0123"
    case unknownLayerKind = "E0124"
    case unknownActivation = "E0125"
    case unknownLoss = "E0126"
    case unknownOptimizer = "E0127"
    case unknownChoice = "E0128"
    case malformedKindEntry = "E0129"
    case emptyLayers = "E0130"
    case duplicateLayerName = "E0131"
    case nesterovConditions = "E0132"
    case optionOfOtherOptimizer = "E0133"
    case invalidName = "E0134"
    case tooManyLayers = "E0135"
    // Warnings: the spec is valid but likely not what was meant.
    case dampeningWithoutMomentum = "W0100"
    case activationBeforeCrossEntropy = "W0101"

    public var code: String { rawValue }
}

extension Diagnostic {
    static func error(
        _ code: SpecDiagnosticCode, _ message: String, at location: SourceLocation?, notes: [DiagnosticNote] = [],
        suggestion: String? = nil
    ) -> Diagnostic {
        Diagnostic(.error, code: code.rawValue, message, at: location, notes: notes, suggestion: suggestion)
    }

    static func warning(
        _ code: SpecDiagnosticCode, _ message: String, at location: SourceLocation?, notes: [DiagnosticNote] = [],
        suggestion: String? = nil
    ) -> Diagnostic {
        Diagnostic(.warning, code: code.rawValue, message, at: location, notes: notes, suggestion: suggestion)
    }
}

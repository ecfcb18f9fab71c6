/// Diagnostics collected in one pass, bounded: after `limit` the rest are counted, not kept, so a
/// hostile file with a million bad keys yields a readable report (compilers stop at an error limit
/// too).
struct DiagnosticList {
    static let limit = 100

    private(set) var items: [Diagnostic] = []
    private(set) var droppedCount = 0
    private(set) var hasErrors = false

    /// Further diagnostics will only be counted: callers may skip the work of describing them.
    var isFull: Bool { items.count >= DiagnosticList.limit }

    mutating func append(_ diagnostic: Diagnostic) {
        if diagnostic.severity == .error { hasErrors = true }
        if items.count < DiagnosticList.limit {
            items.append(diagnostic)
        } else {
            droppedCount += 1
        }
    }

    mutating func append(contentsOf diagnostics: [Diagnostic]) {
        for diagnostic in diagnostics { append(diagnostic) }
    }

    /// The kept diagnostics, plus one saying how many were left out.
    var finished: [Diagnostic] {
        guard droppedCount > 0 else { return items }
        return items + [
            .error(
                SpecDiagnosticCode.tooManyErrors,
                "too many problems: \(droppedCount) more not shown; fix the ones above first", at: nil)
        ]
    }
}

/// The edit distance between two strings (optimal string alignment: insertions, deletions,
/// substitutions and swaps of neighbours cost 1), over Unicode scalars.
public func levenshtein(_ a: String, _ b: String) -> Int {
    let a = Array(a.unicodeScalars)
    let b = Array(b.unicodeScalars)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previousRow = [Int](repeating: 0, count: b.count + 1)
    var row = Array(0...b.count)
    var rowBefore = row
    for i in 1...a.count {
        rowBefore = previousRow
        previousRow = row
        row[0] = i
        for j in 1...b.count {
            let cost = a[i - 1] == b[j - 1] ? 0 : 1
            var best = min(previousRow[j] + 1, row[j - 1] + 1, previousRow[j - 1] + cost)
            if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                best = min(best, rowBefore[j - 2] + 1)
            }
            row[j] = best
        }
    }
    return row[b.count]
}

/// The candidate a misspelt `word` most likely meant, or nil when none is close. Spellings that
/// differ only in case, `_` or `-` match first (`batchSize`, `ReLU`), then well-known names from
/// PyTorch and Keras (`out_features`, `learning_rate`, `dense`), then a unique completion of a
/// prefix, then the nearest candidate within a third of its length.
public func suggestion(for word: String, among candidates: [String]) -> String? {
    // Long words cannot be a typo of a short key, and this keeps the work bounded on hostile input.
    guard !word.isEmpty, word.unicodeScalars.count <= 64 else { return nil }
    let folded = foldSpelling(word)
    if let match = candidates.first(where: { foldSpelling($0) == folded }) { return match }
    if let alias = knownAliases[folded], candidates.contains(alias) { return alias }
    // A unique completion: `xavier` for `xavier_uniform`.
    let completions = candidates.filter { folded.count >= 3 && foldSpelling($0).hasPrefix(folded) }
    if completions.count == 1 { return completions[0] }
    var best: (candidate: String, distance: Int)?
    for candidate in candidates {
        let distance = levenshtein(word.lowercased(), candidate)
        let limit = max(1, candidate.unicodeScalars.count / 3)
        if distance <= limit, distance < (best?.distance ?? Int.max) {
            best = (candidate, distance)
        }
    }
    return best?.candidate
}

private func foldSpelling(_ word: String) -> String {
    String(word.lowercased().unicodeScalars.filter { $0 != "_" && $0 != "-" && $0 != " " })
}

/// Names users bring from other frameworks, keyed by their folded spelling.
private let knownAliases: [String: String] = [
    "outfeatures": "out", "units": "out", "features": "out",
    "learningrate": "lr", "numepochs": "epochs", "nepochs": "epochs", "batch": "batch_size",
    "dense": "linear", "fullyconnected": "linear", "fc": "linear",
    "droprate": "p", "rate": "p", "initializer": "init", "initialization": "init",
    "usebias": "bias", "crossentropyloss": "cross_entropy", "ce": "cross_entropy",
    "mseloss": "mse", "l2": "mse",
]

import SpecParser

// Names and values read from a file (a tensor name in a safetensors header, a metadata value, a path
// recorded in a model) go into messages a terminal shows. Printed raw, an ESC sequence in one can clear
// the screen or recolour what follows, a NUL or a carriage return can hide text, and a bidirectional
// override can make a name read differently from what it is. Every such message passes the text
// through `escapedForMessage`, so what the user sees is exactly what the file says, byte for byte.

/// `text` escaped for a message, quotes included (the spec's diagnostics use the same escapes:
/// `escapingControlCharacters`).
public func escapedForMessage(_ text: String) -> String { escapingControlCharacters(text, escapingQuotes: true) }

/// A path as messages print it: a newline, a tab or any other control character in it escaped
/// (`a\nb`), as the diagnostics print a spec's path, so a path cannot break a message into lines that
/// look like mlpc's own.
public func pathForMessage(_ path: String) -> String { escapingControlCharacters(path) }

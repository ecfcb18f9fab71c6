// Shared kernel types.

package jsondoc

// FormatVersion is the format_version of every machine-readable document
// and UI line hyperagent emits: "MAJOR.MINOR". A minor version only adds
// properties; a change that breaks readers raises the major version.
// Saved plans and state files keep their own integer versions.
const FormatVersion = "1.0"

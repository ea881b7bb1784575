package scale

// WriteManifest is writeManifest, for the tests.
var WriteManifest = writeManifest

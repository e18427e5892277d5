package pool

// DialConfig exposes dialConfig to the external tests.
var DialConfig = dialConfig

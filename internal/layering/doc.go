// Package layering holds no code: its test pins which of Cairn's packages
// may import which, so that the layering (captures below the server, the
// record and the wire plumbing at the bottom) cannot quietly erode.
package layering

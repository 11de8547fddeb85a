package awsproto

import "testing"

func TestValidAccountID(t *testing.T) {
	for s, want := range map[string]bool{
		"000000000000": true, "123456789012": true,
		"": false, "12345678901": false, "1234567890123": false, "12345678901a": false, "１２３４５６７８９０１２": false,
	} {
		if got := ValidAccountID(s); got != want {
			t.Errorf("ValidAccountID(%q) = %v, want %v", s, got, want)
		}
	}
}

package query

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"unicode"
)

// The sample-query library: CloudTrail Lake's published sample queries
// (aws-samples/cloud-trail-lake-query-samples, MIT-0, and the Lake
// documentation's examples), kept with their expected results on the
// fixture store in one table that the tests run and SearchSampleQueries
// searches.
//
//go:embed testdata/samples.json
var samplesJSON []byte

// Sample is one sample query.
type Sample struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	// SQL is the query as published, naming its table with Placeholder.
	SQL         string `json:"sql"`
	Placeholder string `json:"placeholder"`
	// Source is where it was published.
	Source string `json:"source"`
}

// Samples returns the library, in its order.
func Samples() ([]Sample, error) {
	var s []Sample
	if err := json.Unmarshal(samplesJSON, &s); err != nil {
		return nil, fmt.Errorf("query: read the sample-query library: %w", err)
	}
	return s, nil
}

// SearchResult is a sample with its relevance to a search phrase.
type SearchResult struct {
	Sample
	Relevance float32
}

// Search ranks the samples by how much of phrase they contain: each word
// of the phrase found in a sample's name counts three, in its
// description two, in its SQL one; relevance is the score over the best
// possible, so 1 means every word is in the name, description and SQL.
// Samples matching no word are left out. Lake ranks with a language
// model; this is a plain, predictable word match.
func Search(phrase string) ([]SearchResult, error) {
	samples, err := Samples()
	if err != nil {
		return nil, err
	}
	words := tokens(phrase)
	if len(words) == 0 {
		return nil, nil
	}
	var out []SearchResult
	for _, s := range samples {
		name, desc, sqlText := tokenSet(s.Name), tokenSet(s.Description), tokenSet(s.SQL)
		score := 0
		for _, w := range words {
			if name[w] {
				score += 3
			}
			if desc[w] {
				score += 2
			}
			if sqlText[w] {
				score++
			}
		}
		if score == 0 {
			continue
		}
		out = append(out, SearchResult{Sample: s, Relevance: float32(score) / float32(6*len(words))})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Relevance > out[j].Relevance })
	return out, nil
}

// stopWords carry no meaning in a search phrase.
var stopWords = setOf("a", "an", "the", "of", "in", "on", "by", "for", "to", "and", "or", "with", "is", "are",
	"what", "which", "who", "show", "me", "my", "list", "all", "find", "from", "select", "where")

func tokens(s string) []string {
	var out []string
	seen := map[string]bool{}
	for _, f := range strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		f = strings.TrimSuffix(f, "s")
		if len(f) < 2 || stopWords[f] || seen[f] {
			continue
		}
		seen[f] = true
		out = append(out, f)
	}
	return out
}

func tokenSet(s string) map[string]bool {
	m := map[string]bool{}
	for _, t := range tokens(s) {
		m[t] = true
	}
	return m
}

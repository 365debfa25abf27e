// Writes a Trivy vulnerability database (a bbolt file) from a JSON description of its buckets.
//
// Trivy reads its database with bbolt, which has no writer outside Go, so the test database is
// made here from content.json: nested objects are buckets, and a bucket's "pairs" are keys whose
// values are stored as compact JSON, the layout of Trivy's own database fixtures. Built by
// ./build.sh with Go and bbolt from Debian (golang-go, golang-github-coreos-bbolt-dev).
package main

import (
	"encoding/json"
	"fmt"
	"os"

	bolt "go.etcd.io/bbolt"
)

// A bucket holds nested buckets and key/value pairs.
type bucket struct {
	Buckets map[string]bucket          `json:"buckets"`
	Pairs   map[string]json.RawMessage `json:"pairs"`
}

type writer interface {
	CreateBucketIfNotExists([]byte) (*bolt.Bucket, error)
}

func fill(parent writer, name string, content bucket) error {
	b, err := parent.CreateBucketIfNotExists([]byte(name))
	if err != nil {
		return fmt.Errorf("bucket %q: %w", name, err)
	}
	for key, value := range content.Pairs {
		var compact []byte
		if compact, err = compactJSON(value); err != nil {
			return fmt.Errorf("%s/%s: %w", name, key, err)
		}
		if err = b.Put([]byte(key), compact); err != nil {
			return err
		}
	}
	for child, nested := range content.Buckets {
		if err = fill(b, child, nested); err != nil {
			return err
		}
	}
	return nil
}

func compactJSON(raw json.RawMessage) ([]byte, error) {
	var value interface{}
	if err := json.Unmarshal(raw, &value); err != nil {
		return nil, err
	}
	return json.Marshal(value)
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: builder CONTENT.json OUT.db")
		os.Exit(2)
	}
	data, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var top map[string]bucket
	if err = json.Unmarshal(data, &top); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
	os.Remove(os.Args[2])
	db, err := bolt.Open(os.Args[2], 0o644, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for name, content := range top {
			if err := fill(tx, name, content); err != nil {
				return err
			}
		}
		return nil
	})
	if closeErr := db.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

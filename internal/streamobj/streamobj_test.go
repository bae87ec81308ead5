package streamobj

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
)

func sample() ([]byte, []Entry) {
	b := NewBuilder(64)
	id := [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	e1 := b.AddChunk(Entry{TopicID: id, Partition: 0, BaseOffset: 0, LastOffset: 2, MaxTimestamp: 1700000000000, Records: 3}, [][]byte{[]byte("aaaa"), []byte("bb")})
	e2 := b.AddChunk(Entry{TopicID: id, Partition: 7, BaseOffset: 10, LastOffset: 10, MaxTimestamp: 1700000000001, Records: 1}, [][]byte{[]byte("c")})
	return b.Finish(), []Entry{e1, e2}
}

// TestGolden pins the byte layout: a change to the format must be deliberate
// (bump the version) because objects written by older brokers stay readable.
func TestGolden(t *testing.T) {
	obj, want := sample()
	golden := filepath.Join("testdata", "two-chunks.hex")
	if os.Getenv("UPDATE_GOLDEN") != "" {
		if err := os.WriteFile(golden, []byte(hex.Dump(obj)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	g, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if string(g) != hex.Dump(obj) {
		t.Fatalf("layout changed:\n%s\nwant:\n%s", hex.Dump(obj), g)
	}
	got, err := Parse(obj)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("entries %+v, want %+v", got, want)
	}
	if !bytes.Equal(obj[got[0].Pos:got[0].Pos+got[0].Len], []byte("aaaabb")) {
		t.Fatal("chunk 0 bytes wrong")
	}
}

func TestCorrupt(t *testing.T) {
	obj, _ := sample()
	for i := range obj {
		c := bytes.Clone(obj)
		c[i] ^= 0x40
		if _, err := Parse(c); err == nil && i >= len(obj)-TrailerLen-2*entryLen {
			t.Fatalf("flip at %d in footer/trailer not detected", i)
		}
	}
}

func FuzzParse(f *testing.F) {
	obj, _ := sample()
	f.Add(obj)
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := Parse(b)
		if err != nil {
			return
		}
		for _, e := range es {
			_ = b[e.Pos : e.Pos+e.Len]
		}
	})
}

package forget

import (
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/einvault/einvault/internal/repo"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// zone is the local time of the test data (Vietnam, UTC+7): buckets are
// computed in it, so snapshots just after local midnight are a new day
// even though in UTC they are still the previous one.
var zone = time.FixedZone("ICT", 7*3600)

// testTimes is a fixed, irregular set of snapshot times: two and a half
// years of mostly daily backups with gaps, bursts in one hour, and
// snapshots next to day, ISO-week, month and year boundaries.
func testTimes() []time.Time {
	rng := rand.New(rand.NewPCG(78, 2023))
	var out []time.Time
	t := time.Date(2023, 1, 1, 2, 0, 0, 0, zone)
	end := time.Date(2025, 6, 30, 0, 0, 0, 0, zone)
	for t.Before(end) {
		out = append(out, t)
		step := time.Duration(6+rng.IntN(60)) * time.Hour
		if rng.IntN(10) == 0 {
			step = time.Duration(5+rng.IntN(30)) * 24 * time.Hour // a gap
		}
		t = t.Add(step).Truncate(time.Minute)
	}
	edges := []string{
		"2024-12-31T23:59:00+07:00", "2025-01-01T00:01:00+07:00", // year
		"2025-03-31T23:30:00+07:00", "2025-04-01T00:30:00+07:00", // month
		"2025-06-01T23:59:00+07:00", "2025-06-02T00:00:00+07:00", // ISO week (Sun/Mon)
		"2025-06-28T10:05:00+07:00", "2025-06-28T10:20:00+07:00", "2025-06-28T10:55:00+07:00", // one hour
		"2025-06-29T06:30:00+07:00", // before UTC midnight: still 28 June in UTC
	}
	for _, e := range edges {
		tt, err := time.Parse(time.RFC3339, e)
		if err != nil {
			panic(err)
		}
		out = append(out, tt)
	}
	return out
}

func testSnapshots() []*repo.Snapshot {
	var out []*repo.Snapshot
	for i, t := range testTimes() {
		s := &repo.Snapshot{Time: t, Host: "erp01", Paths: []string{"/srv/invoices"}, Kind: repo.KindIncremental}
		if i%17 == 0 {
			s.Tags = []string{"month-end"}
		}
		if i%29 == 0 {
			s.Tags = append(s.Tags, "audit", "2023")
		}
		s.ID = repo.Hash([]byte(t.Format(time.RFC3339Nano)))
		out = append(out, s)
	}
	repo.SortSnapshots(out)
	return out
}

func mustDuration(t *testing.T, s string) Duration {
	t.Helper()
	d, err := ParseDuration(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestPolicyGolden(t *testing.T) {
	now := time.Date(2025, 6, 30, 12, 0, 0, 0, zone)
	utc := time.UTC
	cases := []struct {
		name string
		p    Policy
	}{
		{"last5", Policy{Last: 5}},
		{"hourly24", Policy{Hourly: 24}},
		{"daily7", Policy{Daily: 7}},
		{"daily7_utc", Policy{Daily: 7, Location: utc}},
		{"weekly6", Policy{Weekly: 6}},
		{"monthly12", Policy{Monthly: 12}},
		{"yearly_unlimited", Policy{Yearly: -1}},
		{"yearly10_oldest", Policy{Yearly: 10}},
		{"within30d", Policy{Within: mustDuration(t, "30d")}},
		{"within1y2m", Policy{Within: mustDuration(t, "1y2m")}},
		{"tag_month_end", Policy{Tags: []string{"month-end"}, Last: 1}},
		{"tag_and", Policy{Tags: []string{"audit,2023"}, Last: 1}},
		{"combined", Policy{Last: 3, Daily: 7, Weekly: 5, Monthly: 12, Yearly: 5}},
		{"legal_minimum", Policy{Last: 2, MinAge: func(GroupKey) time.Duration { return 45 * 24 * time.Hour }}},
	}
	snaps := testSnapshots()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.p
			if p.Location == nil {
				p.Location = zone
			}
			if err := p.Validate(); err != nil {
				t.Fatal(err)
			}
			keep, remove, reasons := Apply(snaps, p, now)
			if len(keep)+len(remove) != len(snaps) {
				t.Fatalf("keep %d + remove %d != %d snapshots", len(keep), len(remove), len(snaps))
			}
			if len(keep) == 0 {
				t.Fatal("kept nothing")
			}
			var b strings.Builder
			fmt.Fprintf(&b, "# policy: %v (zone %v)\n", p, p.Location)
			for _, s := range keep {
				fmt.Fprintf(&b, "%s  %s\n", s.Time.In(p.Location).Format("2006-01-02 15:04 Mon"), strings.Join(reasons[s.ID], ", "))
			}
			golden := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run 'go test ./internal/forget -update' to create it)", err)
			}
			if got := b.String(); got != string(want) {
				t.Errorf("kept list differs from %s:\n--- got\n%s--- want\n%s", golden, got, want)
			}
		})
	}
}

// Invariants that hold whatever the golden files say.
func TestPolicyInvariants(t *testing.T) {
	snaps := testSnapshots()
	now := time.Date(2025, 6, 30, 12, 0, 0, 0, zone)
	newest := snaps[len(snaps)-1]
	for _, p := range []Policy{{Last: 1}, {Daily: 3}, {Weekly: 2}, {Monthly: 1}, {Yearly: 1}} {
		p.Location = zone
		keep, _, _ := Apply(snaps, p, now)
		if keep[len(keep)-1] != newest {
			t.Errorf("%v: newest snapshot not kept", p)
		}
	}
	keep, remove, _ := Apply(snaps, Policy{Last: 5, Location: zone}, now)
	if len(keep) != 5 || len(remove) != len(snaps)-5 {
		t.Fatalf("last 5: keep %d remove %d", len(keep), len(remove))
	}
	for i, s := range keep {
		if s != snaps[len(snaps)-5+i] {
			t.Fatalf("last 5: kept %v", s.Time)
		}
	}
	// One snapshot per day at most with daily.
	keep, _, _ = Apply(snaps, Policy{Daily: -1, Location: zone}, now)
	days := map[string]bool{}
	for _, s := range keep {
		d := s.Time.In(zone).Format("2006-01-02")
		if days[d] {
			t.Fatalf("two daily snapshots on %s", d)
		}
		days[d] = true
	}
}

func TestEmptyPolicyRefused(t *testing.T) {
	for _, p := range []Policy{{}, {GroupBy: &GroupBy{Host: true}}, {MinAge: func(GroupKey) time.Duration { return time.Hour }}} {
		err := p.Validate()
		if !errors.Is(err, ErrEmptyPolicy) {
			t.Fatalf("Validate(%+v) = %v, want ErrEmptyPolicy", p, err)
		}
		if !strings.Contains(err.Error(), "--keep-last") {
			t.Fatalf("error does not tell what to do: %v", err)
		}
		// Apply with an empty policy must not remove anything.
		keep, remove, _ := Apply(testSnapshots(), p, time.Now())
		if len(remove) != 0 || len(keep) != len(testSnapshots()) {
			t.Fatalf("empty policy removed %d snapshots", len(remove))
		}
	}
	if err := (Policy{Daily: -2}).Validate(); err == nil {
		t.Fatal("negative count accepted")
	}
}

func TestGrouping(t *testing.T) {
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	mk := func(i int, host string, paths ...string) *repo.Snapshot {
		s := &repo.Snapshot{Time: base.Add(time.Duration(i) * time.Hour), Host: host, Paths: paths}
		s.ID = repo.Hash([]byte(fmt.Sprint(i, host, paths)))
		return s
	}
	snaps := []*repo.Snapshot{
		mk(0, "a", "/x"), mk(1, "a", "/x"), mk(2, "b", "/x"), mk(3, "b", "/x"),
		mk(4, "a", "/y"), mk(5, "a", "/y"), mk(6, "a", "/y", "/z"), mk(7, "a", "/z", "/y"),
	}
	tests := []struct {
		by       *GroupBy
		groups   int
		keepLast int
	}{
		{nil, 4, 4}, // host+paths; path order does not matter
		{&GroupBy{Host: true}, 2, 2},
		{&GroupBy{Paths: true}, 3, 3},
		{&GroupBy{}, 1, 1},
	}
	for _, tt := range tests {
		p := Policy{Last: 1, GroupBy: tt.by}
		res := ApplyGroups(snaps, p, base)
		if len(res) != tt.groups {
			t.Errorf("group by %v: %d groups, want %d", tt.by, len(res), tt.groups)
		}
		keep, _, _ := Apply(snaps, p, base)
		if len(keep) != tt.keepLast {
			t.Errorf("group by %v: kept %d, want %d", tt.by, len(keep), tt.keepLast)
		}
	}
	g, err := ParseGroupBy("host,paths")
	if err != nil || g != DefaultGroupBy {
		t.Fatalf("ParseGroupBy: %v %v", g, err)
	}
	if g, err := ParseGroupBy(""); err != nil || g != (GroupBy{}) {
		t.Fatalf("ParseGroupBy(''): %v %v", g, err)
	}
	if _, err := ParseGroupBy("hostname"); err == nil {
		t.Fatal("bad group-by accepted")
	}
}

func TestLegalMinimumPerGroup(t *testing.T) {
	now := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	var snaps []*repo.Snapshot
	for i := 0; i < 10; i++ {
		for _, h := range []string{"vn", "eu"} {
			s := &repo.Snapshot{Time: now.Add(-time.Duration(i) * 24 * time.Hour), Host: h, Paths: []string{"/inv"}}
			s.ID = repo.Hash([]byte(fmt.Sprint(i, h)))
			snaps = append(snaps, s)
		}
	}
	p := Policy{Last: 1, MinAge: func(k GroupKey) time.Duration {
		if k.Host == "vn" {
			return 5*24*time.Hour + time.Minute // days 0..5 are younger
		}
		return 0
	}}
	keep, _, reasons := Apply(snaps, p, now)
	var vn, eu int
	for _, s := range keep {
		if s.Host == "vn" {
			vn++
		} else {
			eu++
		}
	}
	if vn != 6 || eu != 1 {
		t.Fatalf("kept vn %d eu %d, want 6 and 1", vn, eu)
	}
	old := keep[0]
	if !strings.Contains(strings.Join(reasons[old.ID], ","), "legal minimum") {
		t.Fatalf("reasons %v", reasons[old.ID])
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want Duration
		err  bool
	}{
		{"7d", Duration{Days: 7}, false},
		{"1y2m", Duration{Years: 1, Months: 2}, false},
		{"2y5m7d3h", Duration{2, 5, 7, 3}, false},
		{"36h", Duration{Hours: 36}, false},
		{"2w", Duration{Days: 14}, false},
		{"", Duration{}, true},
		{"7", Duration{}, true},
		{"d", Duration{}, true},
		{"7x", Duration{}, true},
		{"1d1d", Duration{}, true},
		{"-1d", Duration{}, true},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ParseDuration(%q) = %+v, %v", tt.in, got, err)
		}
	}
	if s := (Duration{1, 2, 3, 4}).String(); s != "1y2m3d4h" {
		t.Errorf("String = %s", s)
	}
	from := time.Date(2025, 3, 31, 12, 0, 0, 0, time.UTC)
	if got := (Duration{Months: 1}).Before(from); !got.Equal(time.Date(2025, 3, 3, 12, 0, 0, 0, time.UTC)) {
		t.Errorf("1m before %v = %v", from, got) // Go normalises 31 Feb to 3 Mar
	}
}

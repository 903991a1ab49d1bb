package invoice

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseStatusRecordsPortal(t *testing.T) {
	data := []byte(`{"datas":[
 {"nbmst":"0102671977","khmshdon":1,"khhdon":"C25TEK","shdon":5082,"mhdon":"00AB","tdlap":"2025-09-21T17:00:00Z","tthai":1,"nmmst":"0316624050","tgtttbso":{"source":"432000.0","parsedValue":432000}},
 {"nbmst":"0102671977","khmshdon":1,"khhdon":"C25TEK","shdon":5083,"tdlap":"2025-09-22T17:00:00Z","tthai":6},
 {"nbmst":"0102671977","khmshdon":1,"khhdon":"C25TEK","shdon":5084,"tdlap":"2025-09-22T17:00:00Z","tthai":4},
 {"nbmst":"0102671977","khmshdon":1,"khhdon":"C25TEK","shdon":"5090","tdlap":"2025-09-23T17:00:00Z","tthai":2,"khmshdgoc":1,"khhdgoc":"C25TEK","shdgoc":5084},
 {"nbmst":"0102671977","khmshdon":1,"khhdon":"C25TEK","shdon":5091,"tdlap":"2025-09-23T17:00:00Z","tthai":3,"khmshdgoc":"1","khhdgoc":"C25TEK","shdgoc":"00005085"}
]}`)
	recs, err := ParseStatusRecords("portal.json", data)
	if err != nil {
		t.Fatal(err)
	}
	type row struct{ key, status, related, date string }
	want := []row{
		{"0102671977/1/C25TEK/5082", StatusIssued, "", "2025-09-22"},
		{"0102671977/1/C25TEK/5083", StatusCancelled, "", "2025-09-23"},
		{"0102671977/1/C25TEK/5084", StatusReplaced, "", "2025-09-23"},
		{"0102671977/1/C25TEK/5090", StatusIssued, "0102671977/1/C25TEK/5084", "2025-09-24"},
		{"0102671977/1/C25TEK/5084", StatusReplaced, "0102671977/1/C25TEK/5090", ""},
		{"0102671977/1/C25TEK/5091", StatusIssued, "0102671977/1/C25TEK/5085", "2025-09-24"},
		{"0102671977/1/C25TEK/5085", StatusAdjusted, "0102671977/1/C25TEK/5091", ""},
	}
	if len(recs) != len(want) {
		t.Fatalf("%d records: %+v", len(recs), recs)
	}
	for i, w := range want {
		r := recs[i]
		if r.Key != w.key || r.Status != w.status || r.Related != w.related || r.Date != w.date || r.Source != "portal-json" {
			t.Errorf("record %d: %+v, want %+v", i, r, w)
		}
	}
	if recs[0].AuthorityCode != "00AB" || recs[0].Total != "432000" || recs[0].BuyerTaxCode != "0316624050" {
		t.Errorf("record 0: %+v", recs[0])
	}
}

func TestParseStatusRecordsTDiep(t *testing.T) {
	p := getPKI(t)
	s := p.signer(t, "0312345678", testTime.AddDate(-1, 0, 0), testTime.AddDate(1, 0, 0), false)
	recs, err := ParseStatusRecords("202.xml", signedInvoice(t, "0312345678", s, s, testTime))
	if err != nil || len(recs) != 1 {
		t.Fatalf("%+v %v", recs, err)
	}
	if r := recs[0]; r.Key != "0312345678/1/C24TAA/42" || r.Status != StatusIssued || r.Source != "tdiep-202" ||
		r.AuthorityCode != "00ABCDEF0123456789ABCDEF0123456789" || r.Date != "2024-03-05" {
		t.Errorf("%+v", r)
	}
	replacement := strings.Replace(hdonXML("0312345678", "C24TAA", 43, false), "</TGia>",
		"</TGia><TTHDLQuan><TCHDon>1</TCHDon><LHDGoc>1</LHDGoc><KHMSHDGoc>1</KHMSHDGoc><KHHDGoc>C24TAA</KHHDGoc><SHDGoc>42</SHDGoc></TTHDLQuan>", 1)
	recs, err = ParseStatusRecords("r.xml", []byte(replacement))
	if err != nil || len(recs) != 2 || recs[1].Key != "0312345678/1/C24TAA/42" || recs[1].Status != StatusReplaced ||
		recs[0].Related != "0312345678/1/C24TAA/42" || recs[1].Related != "0312345678/1/C24TAA/43" {
		t.Fatalf("replacement: %+v %v", recs, err)
	}
	invs, err := Recognize(t.Context(), "r.xml", []byte(replacement), Limits{})
	if err != nil || invs[0].Kind != "replacement" || invs[0].Related != "0312345678/1/C24TAA/42" {
		t.Fatalf("Recognize replacement: %+v %v", invs, err)
	}
	notice := `<TDiep><TTChung><PBan>2.0.1</PBan><MLTDiep>300</MLTDiep><MST>0312345678</MST></TTChung><DLieu><TBao><DLTBao>
<MSo>04/SS-HĐĐT</MSo><MST>0312345678</MST><NTBao>2024-03-09</NTBao><DSHDon>
<HDon><STT>1</STT><MCQTCap>00ABCDEF0123456789ABCDEF0123456789</MCQTCap><KHMSHDon>1</KHMSHDon><KHHDon>C24TAA</KHHDon><SHDon>42</SHDon><Ngay>2024-03-05</Ngay><TCTBao>1</TCTBao></HDon>
<HDon><STT>2</STT><KHMSHDon>1</KHMSHDon><KHHDon>C24TAA</KHHDon><SHDon>44</SHDon><TCTBao>3</TCTBao></HDon>
<HDon><STT>3</STT><KHMSHDon>1</KHMSHDon><KHHDon>C24TAA</KHHDon><SHDon>45</SHDon><TCTBao>4</TCTBao></HDon>
</DSHDon></DLTBao></TBao></DLieu></TDiep>`
	recs, err = ParseStatusRecords("300.xml", []byte(notice))
	if err != nil || len(recs) != 2 {
		t.Fatalf("%+v %v", recs, err)
	}
	if recs[0].Key != "0312345678/1/C24TAA/42" || recs[0].Status != StatusCancelled || recs[0].Date != "2024-03-05" ||
		recs[1].Key != "0312345678/1/C24TAA/44" || recs[1].Status != StatusReplaced || recs[1].Date != "2024-03-09" || recs[1].Source != "tdiep-300" {
		t.Errorf("%+v", recs)
	}
}

func TestParseStatusRecordsErrors(t *testing.T) {
	for name, data := range map[string]string{
		"empty":        "",
		"text":         "hello",
		"wrong json":   `[{"a":1}]`,
		"bad tthai":    `[{"nbmst":"1","khmshdon":1,"khhdon":"C25TAA","shdon":1,"tthai":9}]`,
		"broken json":  `[{`,
		"other xml":    `<root/>`,
		"hostile xml":  billionLaughs,
		"ubl not tdie": `<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"/>`,
	} {
		if recs, err := ParseStatusRecords(name, []byte(data)); err == nil {
			t.Errorf("%s: no error, %+v", name, recs)
		}
	}
}

// TestParseStatusRecordsPortalSample reads the real portal export of the
// sample collection (not redistributable) where it is present.
func TestParseStatusRecordsPortalSample(t *testing.T) {
	dir := sharedSamples(t)
	if dir == "" {
		t.Skip("sample collection not present (set EINVAULT_EINVOICE_SAMPLES)")
	}
	data, err := os.ReadFile(filepath.Join(dir, "vn", "portal-json_list-invoices-raw.json"))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := ParseStatusRecords("portal", data)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 83 {
		t.Fatalf("%d records, want 83", len(recs))
	}
	coded := 0
	for _, r := range recs {
		if r.Status != StatusIssued || r.Date == "" || !strings.HasPrefix(r.Series, "C25") && !strings.HasPrefix(r.Series, "K25") {
			t.Errorf("%+v", r)
		}
		if r.AuthorityCode != "" {
			coded++
			if r.Series[0] != 'C' || len(r.AuthorityCode) != 34 {
				t.Errorf("authority code on %+v", r)
			}
		}
	}
	if coded != 17 {
		t.Errorf("%d records with mhdon, want 17", coded)
	}
}

package corpus

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// DumpPath is the corpus-relative path of the SQL dump.
const DumpPath = "db/einvoice_dump.sql"

const dumpHeader = `-- MySQL dump 10.13  Distrib 8.0.36, for Linux (x86_64)
--
-- Host: 10.20.0.15    Database: einvoice
-- ------------------------------------------------------
-- Server version	8.0.36

/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;
/*!40101 SET NAMES utf8mb4 */;
/*!40103 SET @OLD_TIME_ZONE=@@TIME_ZONE */;
/*!40103 SET TIME_ZONE='+07:00' */;
/*!40014 SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0 */;
/*!40014 SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0 */;
/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;
`

// dumpTrailer ends every dump; Mutate cuts it off, appends rows and writes it again.
const dumpTrailer = `/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;
/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;
/*!40014 SET FOREIGN_KEY_CHECKS=@OLD_FOREIGN_KEY_CHECKS */;
/*!40014 SET UNIQUE_CHECKS=@OLD_UNIQUE_CHECKS */;
/*!40101 SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT */;

-- Dump completed on 2026-01-01  2:00:03
`

var tableDDL = map[string]string{
	"sellers": "CREATE TABLE `sellers` (\n  `id` int NOT NULL AUTO_INCREMENT,\n  `mst` varchar(14) NOT NULL,\n  `name` varchar(400) NOT NULL,\n  `address` varchar(400) NOT NULL,\n  `phone` varchar(20) DEFAULT NULL,\n  `email` varchar(100) DEFAULT NULL,\n  `provider_mst` varchar(14) DEFAULT NULL,\n  PRIMARY KEY (`id`),\n  UNIQUE KEY `uq_sellers_mst` (`mst`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci;",
	"buyers":  "CREATE TABLE `buyers` (\n  `id` int NOT NULL AUTO_INCREMENT,\n  `code` varchar(50) DEFAULT NULL,\n  `mst` varchar(14) DEFAULT NULL,\n  `name` varchar(400) NOT NULL,\n  `address` varchar(400) DEFAULT NULL,\n  `contact` varchar(100) DEFAULT NULL,\n  `phone` varchar(20) DEFAULT NULL,\n  `email` varchar(100) DEFAULT NULL,\n  PRIMARY KEY (`id`),\n  KEY `ix_buyers_mst` (`mst`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci;",
	"invoices": "CREATE TABLE `invoices` (\n  `id` bigint NOT NULL AUTO_INCREMENT,\n  `seller_id` int NOT NULL,\n  `khmshdon` char(1) NOT NULL,\n  `khhdon` char(6) NOT NULL,\n  `shdon` int NOT NULL,\n  `nlap` date NOT NULL,\n  `buyer_id` int DEFAULT NULL,\n  `currency` char(3) NOT NULL DEFAULT 'VND',\n  `payment_method` varchar(50) DEFAULT NULL,\n" +
		"  `total_before_tax` decimal(21,4) NOT NULL,\n  `total_tax` decimal(21,4) NOT NULL,\n  `total_amount` decimal(21,4) NOT NULL,\n  `amount_in_words` varchar(255) DEFAULT NULL,\n  `mccqt` char(34) DEFAULT NULL,\n  `status` varchar(20) NOT NULL,\n  `xml_path` varchar(255) NOT NULL,\n  `pdf_path` varchar(255) DEFAULT NULL,\n  `signed_at` datetime DEFAULT NULL,\n" +
		"  PRIMARY KEY (`id`),\n  UNIQUE KEY `uq_invoice_key` (`seller_id`,`khmshdon`,`khhdon`,`shdon`),\n  KEY `ix_invoices_nlap` (`nlap`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci;",
	"invoice_lines":  "CREATE TABLE `invoice_lines` (\n  `id` bigint NOT NULL AUTO_INCREMENT,\n  `invoice_id` bigint NOT NULL,\n  `line_no` int NOT NULL,\n  `kind` tinyint NOT NULL,\n  `item_code` varchar(50) DEFAULT NULL,\n  `item_name` varchar(500) NOT NULL,\n  `unit` varchar(50) DEFAULT NULL,\n  `quantity` decimal(21,4) DEFAULT NULL,\n  `unit_price` decimal(21,4) DEFAULT NULL,\n  `discount_amount` decimal(21,4) DEFAULT NULL,\n  `amount` decimal(21,4) DEFAULT NULL,\n  `tax_rate` varchar(10) DEFAULT NULL,\n  `tax_amount` decimal(21,4) DEFAULT NULL,\n  PRIMARY KEY (`id`),\n  KEY `ix_lines_invoice` (`invoice_id`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci;",
	"invoice_events": "CREATE TABLE `invoice_events` (\n  `id` bigint NOT NULL AUTO_INCREMENT,\n  `invoice_id` bigint NOT NULL,\n  `event` varchar(30) NOT NULL,\n  `at` datetime(3) NOT NULL,\n  `actor` varchar(100) DEFAULT NULL,\n  `detail` text,\n  PRIMARY KEY (`id`),\n  KEY `ix_events_invoice` (`invoice_id`,`at`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci;",
}

var sqlEsc = strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`)

func q(s string) string {
	if s == "" {
		return "NULL"
	}
	return "'" + sqlEsc.Replace(s) + "'"
}

// sqlWriter writes mysqldump-style extended INSERT statements and counts bytes.
type sqlWriter struct {
	w       *bufio.Writer
	n       int64
	table   string
	inBatch int // bytes in the current INSERT statement, 0 if none open
	row     bytes.Buffer
}

const maxStatement = 64 * 1024

func (s *sqlWriter) str(v string) {
	m, _ := s.w.WriteString(v)
	s.n += int64(m)
}

func (s *sqlWriter) beginTable(name string, ddl bool) {
	s.table = name
	if ddl {
		s.str("\n--\n-- Table structure for table `" + name + "`\n--\n\nDROP TABLE IF EXISTS `" + name + "`;\n")
		s.str(tableDDL[name] + "\n")
	}
	s.str("\n--\n-- Dumping data for table `" + name + "`\n--\n\nLOCK TABLES `" + name + "` WRITE;\n/*!40000 ALTER TABLE `" + name + "` DISABLE KEYS */;\n")
}

// addRow writes the row currently in s.row.
func (s *sqlWriter) addRow() {
	if s.inBatch > 0 && s.inBatch+s.row.Len() > maxStatement {
		s.str(";\n")
		s.inBatch = 0
	}
	if s.inBatch == 0 {
		h := "INSERT INTO `" + s.table + "` VALUES "
		s.str(h)
		s.inBatch = len(h)
	} else {
		s.str(",")
		s.inBatch++
	}
	m, _ := s.w.Write(s.row.Bytes())
	s.n += int64(m)
	s.inBatch += m
	s.row.Reset()
}

func (s *sqlWriter) endTable() {
	if s.inBatch > 0 {
		s.str(";\n")
		s.inBatch = 0
	}
	s.str("/*!40000 ALTER TABLE `" + s.table + "` ENABLE KEYS */;\nUNLOCK TABLES;\n")
}

// rowf formats one parenthesised row into s.row.
func (s *sqlWriter) rowf(vals ...string) {
	s.row.WriteByte('(')
	for i, v := range vals {
		if i > 0 {
			s.row.WriteByte(',')
		}
		s.row.WriteString(v)
	}
	s.row.WriteByte(')')
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

func dec(v int64) string { return strconv.FormatInt(v, 10) + ".0000" }

func sqlTime(t time.Time) string { return "'" + t.Format("2006-01-02 15:04:05") + "'" }

func (s *sqlWriter) invoiceRow(id int64, inv *invoice, xmlPath, pdfPath string) {
	status := "signed"
	if inv.mccqt != "" {
		status = "cqt_coded"
	}
	mccqt := inv.mccqt
	s.rowf(itoa(id), itoa(int64(inv.plan.seller)+1), q(inv.form), q(inv.series), itoa(int64(inv.plan.number)),
		"'"+inv.date.Format("2006-01-02")+"'", itoa(int64(inv.buyer.id)+1), "'VND'", q(inv.payment),
		dec(inv.net), dec(inv.tax), dec(inv.total), q(inv.words), q(mccqt), q(status), q(xmlPath), q(pdfPath), sqlTime(inv.signed))
	s.addRow()
}

func (s *sqlWriter) lineRows(nextID *int64, invID int64, inv *invoice) {
	for i, ln := range inv.lines {
		*nextID++
		if ln.note {
			s.rowf(itoa(*nextID), itoa(invID), itoa(int64(i+1)), "4", "NULL", q(ln.name), "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL")
		} else {
			qty := fmt.Sprintf("%d.%02d00", ln.qty/100, ln.qty%100)
			s.rowf(itoa(*nextID), itoa(invID), itoa(int64(i+1)), "1", q(ln.code), q(ln.name), q(ln.unit), qty,
				dec(ln.price), dec(ln.discount), dec(ln.amount), q(ln.rate), dec(ln.tax))
		}
		s.addRow()
	}
}

var (
	eventKinds = []string{"created", "signed", "sent_to_cqt", "cqt_accepted", "emailed", "viewed", "downloaded", "printed", "reconciled"}
	actors     = []string{"system", "ketoan01", "ketoan02", "thungan03", "admin", "api:erp", "api:pos"}
	userAgents = []string{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148", "einvoice-erp-connector/3.4.1", "okhttp/4.12.0"}
)

func (s *sqlWriter) eventRow(r *rng, id, invID int64, at time.Time, inv string) {
	ev := pick(r, eventKinds)
	detail := fmt.Sprintf(`{"invoice":"%s","ip":"10.%d.%d.%d","ua":"%s","ms":%d}`, inv, r.intn(256), r.intn(256), r.intn(256), pick(r, userAgents), r.between(3, 2500))
	s.rowf(itoa(id), itoa(invID), q(ev), "'"+at.Format("2006-01-02 15:04:05.000")+"'", q(pick(r, actors)), q(detail))
	s.addRow()
}

// writeDump streams the dump for the given plan, about size bytes long.
func writeDump(ctx context.Context, out io.Writer, seed int64, plan []planEntry, nBuyers int, size int64) (int64, error) {
	s := &sqlWriter{w: bufio.NewWriterSize(out, 1<<20)}
	s.str(dumpHeader)
	s.beginTable("sellers", true)
	for i, sl := range sellers {
		s.rowf(itoa(int64(i+1)), q(sl.mst), q(sl.name), q(sl.addr), q(sl.phone), q(sl.email), q(sl.provider))
		s.addRow()
	}
	s.endTable()
	s.beginTable("buyers", true)
	for i := 0; i < nBuyers; i++ {
		b := makeBuyer(seed, i)
		s.rowf(itoa(int64(i+1)), q(b.code), q(b.mst), q(b.name), q(b.addr), q(b.contact), q(b.phone), q(b.email))
		s.addRow()
	}
	s.endTable()

	budget := size - int64(len(dumpTrailer)) - 256
	// invoices: up to 35% of the budget, lines up to 80%, events fill the rest.
	kept := make([]uint8, len(plan)) // number of lines kept after size trimming
	var scratch bytes.Buffer
	s.beginTable("invoices", true)
	nInv := 0
	for i := range plan {
		if i%1024 == 0 && ctx.Err() != nil {
			return s.n, ctx.Err()
		}
		if s.n > budget*35/100 {
			break
		}
		inv := buildInvoice(seed, i, plan[i], nBuyers, &scratch)
		kept[i] = uint8(len(inv.lines))
		xmlPath, pdfPath := invoicePaths(plan[i])
		s.invoiceRow(int64(i+1), inv, xmlPath, pdfPath)
		nInv++
	}
	s.endTable()
	s.beginTable("invoice_lines", true)
	var lineID int64
	for i := 0; i < nInv; i++ {
		if i%1024 == 0 && ctx.Err() != nil {
			return s.n, ctx.Err()
		}
		if s.n > budget*80/100 {
			break
		}
		inv := makeInvoice(seed, newRNG(seed, streamInvoice, uint64(i)), plan[i], nBuyers)
		inv.lines = inv.lines[:kept[i]]
		s.lineRows(&lineID, int64(i+1), inv)
	}
	s.endTable()
	s.beginTable("invoice_events", true)
	r := newRNG(seed, streamDump, 0)
	var evID int64
	for round := 0; len(plan) > 0 && s.n < budget; round++ {
		for i := 0; i < len(plan) && s.n < budget; i++ {
			if i%1024 == 0 && ctx.Err() != nil {
				return s.n, ctx.Err()
			}
			p := plan[i]
			at := p.date().Add(time.Duration(7*3600+round*3600*24*3+r.intn(3600*12)) * time.Second).Add(time.Duration(r.intn(1000)) * time.Millisecond)
			evID++
			mst, ser := p.key()
			s.eventRow(r, evID, int64(i+1), at, fmt.Sprintf("%s/%s/%d", mst, ser, p.number))
		}
	}
	s.endTable()
	s.str("\n")
	s.str(dumpTrailer)
	return s.n, s.w.Flush()
}

func invoicePaths(p planEntry) (xmlPath, pdfPath string) {
	base := p.relBase()
	xmlPath = "invoices/" + base + ".xml"
	if p.pdf {
		pdfPath = "renderings/" + base + ".pdf"
	}
	return
}

// buildInvoice makes invoice number i of the plan and trims its lines until
// its XML fits maxXML; the XML is left in buf.
func buildInvoice(seed int64, i int, p planEntry, nBuyers int, buf *bytes.Buffer) *invoice {
	inv := makeInvoice(seed, newRNG(seed, streamInvoice, uint64(i)), p, nBuyers)
	for {
		buf.Reset()
		inv.renderXML(buf, seed)
		if buf.Len() <= maxXML || !inv.dropLines() {
			return inv
		}
	}
}

package notify

import (
	"fmt"
	"sort"
	"strings"
)

// Languages messages can be written in.
var Languages = []string{"en", "vi", "zh"}

// phrases holds the frame of every message per language. The event's own
// Message line stays as the operation wrote it; everything around it —
// the title, labels and instructions — is translated.
var phrases = map[string]map[string]string{
	"en": {
		"failure": "FAILED", "degraded": "DEGRADED", "stale": "BACKUP TOO OLD", "success-digest": "Backup summary",
		"recovered": "RECOVERED", "host": "HOST ALERT",
		"info": "info", "warning": "warning", "critical": "critical",
		"job": "Job", "op": "Operation", "host_label": "Host", "time": "Time", "severity": "Severity", "alert": "Alert",
		"level":      "Escalation level",
		"ack":        "Acknowledge with: einvault alerts ack %s",
		"escalated":  "Not acknowledged for %s: escalated to level %d.",
		"test_title": "Test message",
		"test_body":  "This is a test message from einvault. If you can read it, this channel works.",
	},
	"vi": {
		"failure": "THẤT BẠI", "degraded": "SUY GIẢM", "stale": "BẢN SAO LƯU QUÁ CŨ", "success-digest": "Tóm tắt sao lưu",
		"recovered": "ĐÃ KHÔI PHỤC", "host": "CẢNH BÁO MÁY CHỦ",
		"info": "thông tin", "warning": "cảnh báo", "critical": "nghiêm trọng",
		"job": "Tác vụ", "op": "Thao tác", "host_label": "Máy chủ", "time": "Thời gian", "severity": "Mức độ", "alert": "Cảnh báo",
		"level":      "Cấp leo thang",
		"ack":        "Xác nhận bằng lệnh: einvault alerts ack %s",
		"escalated":  "Chưa được xác nhận sau %s: đã chuyển lên cấp %d.",
		"test_title": "Tin nhắn thử",
		"test_body":  "Đây là tin nhắn thử từ einvault. Nếu bạn đọc được, kênh này hoạt động.",
	},
	"zh": {
		"failure": "失败", "degraded": "降级", "stale": "备份过旧", "success-digest": "备份摘要",
		"recovered": "已恢复", "host": "主机告警",
		"info": "信息", "warning": "警告", "critical": "严重",
		"job": "作业", "op": "操作", "host_label": "主机", "time": "时间", "severity": "级别", "alert": "告警",
		"level":      "升级级别",
		"ack":        "确认告警：einvault alerts ack %s",
		"escalated":  "%s 内未确认：已升级到第 %d 级。",
		"test_title": "测试消息",
		"test_body":  "这是 einvault 发送的测试消息。如果您能看到它，说明此渠道工作正常。",
	},
}

// ValidLanguage reports whether lang is one messages can be written in.
func ValidLanguage(lang string) bool {
	_, ok := phrases[lang]
	return ok
}

func phrase(lang, key string) string {
	if p, ok := phrases[lang][key]; ok {
		return p
	}
	return phrases["en"][key]
}

// Rendered is one alert written for one recipient.
type Rendered struct {
	AlertID  string
	Lang     string
	Subject  string // one line: "[einvault] FAILED: invoices-hourly on srv1"
	Text     string // plain text body
	Markdown string // the same in Markdown (Slack, Teams, DingTalk, WeCom)
	Level    int
	Facts    []Fact // the labelled lines, translated (Teams cards show them as a fact set)
	Event    Event
}

// Fact is one labelled line of a message.
type Fact struct{ Title, Value string }

// Render writes ev in lang for an alert at escalation level (0 = first).
func Render(alertID string, ev Event, lang string, level int, escalatedAfter string) Rendered {
	if !ValidLanguage(lang) {
		lang = "en"
	}
	title := phrase(lang, string(ev.Kind))
	subject := "[einvault] " + title
	if ev.Job != "" {
		subject += ": " + ev.Job
	}
	if ev.Host != "" {
		subject += " @ " + ev.Host
	}
	type row = Fact
	rows := []row{{phrase(lang, "severity"), phrase(lang, string(ev.Severity))}}
	if ev.Job != "" {
		rows = append(rows, row{phrase(lang, "job"), ev.Job})
	}
	if ev.Op != "" {
		rows = append(rows, row{phrase(lang, "op"), ev.Op})
	}
	if ev.Host != "" {
		rows = append(rows, row{phrase(lang, "host_label"), ev.Host})
	}
	rows = append(rows, row{phrase(lang, "time"), ev.Time.Format("2006-01-02 15:04:05 -0700")})
	keys := make([]string, 0, len(ev.Fields))
	for k := range ev.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		rows = append(rows, row{k, ev.Fields[k]})
	}
	if alertID != "" {
		rows = append(rows, row{phrase(lang, "alert"), alertID})
	}
	var text, md strings.Builder
	fmt.Fprintf(&text, "%s\n\n%s\n\n", subject, ev.Message)
	fmt.Fprintf(&md, "**%s**\n\n%s\n\n", subject, ev.Message)
	if level > 0 {
		line := fmt.Sprintf(phrase(lang, "escalated"), escalatedAfter, level)
		fmt.Fprintf(&text, "%s\n\n", line)
		fmt.Fprintf(&md, "> %s\n\n", line)
	}
	for _, r := range rows {
		fmt.Fprintf(&text, "%s: %s\n", r.Title, r.Value)
		fmt.Fprintf(&md, "- **%s:** %s\n", r.Title, r.Value)
	}
	if alertID != "" && ev.Kind != KindSuccess {
		ack := fmt.Sprintf(phrase(lang, "ack"), alertID)
		fmt.Fprintf(&text, "\n%s\n", ack)
		fmt.Fprintf(&md, "\n`%s`\n", ack)
	}
	return Rendered{AlertID: alertID, Lang: lang, Subject: subject, Text: text.String(), Markdown: md.String(), Level: level, Facts: rows, Event: ev}
}

package report

// labels are the report's words per language (en, vi, zh).
var labels = map[string]map[string]string{
	"en": {
		"title": "Monthly backup report", "generated": "Generated", "repository": "Repository",
		"overview": "Overview", "runs": "Operations", "success": "Success rate", "added": "Data added",
		"snapshots": "Snapshots", "unresolved": "Unresolved failures", "mttr": "Mean time to repair",
		"jobs": "Backup success rate per job", "job": "Job", "ok": "OK", "degraded": "Degraded", "failed": "Failed",
		"sizes": "Data added per day", "durations": "Mean backup duration per day (seconds)",
		"read": "read", "stored": "added",
		"copies": "Copies", "copy": "Copy", "kind": "Media", "reachable": "Reachable", "last_sync": "Last sync",
		"last_verify": "Last full verification", "errors": "Errors", "behind": "Snapshots missing", "yes": "yes", "no": "no",
		"verdict":  "3-2-1-1-0 verdict",
		"recovery": "Restores and drills", "time": "Time", "op": "Operation", "what": "What", "result": "Result",
		"rto": "RTO (target)", "rpo": "RPO (target)", "none": "None this month.",
		"invoices": "Invoices protected per month",
		"failures": "Failures and how they were resolved", "error": "Error", "resolved": "Resolved",
		"not_resolved": "NOT RESOLVED", "after": "after",
		"verdict_met": "met", "verdict_not_met": "NOT MET", "criterion_met": "ok", "criterion_missing": "missing",
		"rule_copies": "Copies", "rule_media": "Kinds of media", "rule_offsite": "Off-site copies",
		"rule_immutable": "Immutable copies", "rule_errors": "Errors at last verification (never verified counts as one)",
		"op_restore": "restore", "op_drill": "drill",
		"never": "never",
	},
	"vi": {
		"title": "Báo cáo sao lưu hằng tháng", "generated": "Lập lúc", "repository": "Kho lưu trữ",
		"overview": "Tổng quan", "runs": "Số thao tác", "success": "Tỷ lệ thành công", "added": "Dữ liệu thêm",
		"snapshots": "Bản chụp", "unresolved": "Lỗi chưa khắc phục", "mttr": "Thời gian khắc phục trung bình",
		"jobs": "Tỷ lệ sao lưu thành công theo tác vụ", "job": "Tác vụ", "ok": "Thành công", "degraded": "Suy giảm", "failed": "Thất bại",
		"sizes": "Dữ liệu thêm mỗi ngày", "durations": "Thời gian sao lưu trung bình mỗi ngày (giây)",
		"read": "đã đọc", "stored": "đã thêm",
		"copies": "Các bản sao", "copy": "Bản sao", "kind": "Phương tiện", "reachable": "Truy cập được", "last_sync": "Đồng bộ gần nhất",
		"last_verify": "Kiểm tra toàn bộ gần nhất", "errors": "Lỗi", "behind": "Bản chụp còn thiếu", "yes": "có", "no": "không",
		"verdict":  "Đánh giá 3-2-1-1-0",
		"recovery": "Khôi phục và diễn tập", "time": "Thời gian", "op": "Thao tác", "what": "Nội dung", "result": "Kết quả",
		"rto": "RTO (mục tiêu)", "rpo": "RPO (mục tiêu)", "none": "Không có trong tháng.",
		"invoices": "Số hoá đơn được bảo vệ mỗi tháng",
		"failures": "Sự cố và cách khắc phục", "error": "Lỗi", "resolved": "Khắc phục",
		"not_resolved": "CHƯA KHẮC PHỤC", "after": "sau",
		"verdict_met": "đạt", "verdict_not_met": "CHƯA ĐẠT", "criterion_met": "đạt", "criterion_missing": "thiếu",
		"rule_copies": "Số bản sao", "rule_media": "Loại phương tiện", "rule_offsite": "Bản sao ngoài trụ sở",
		"rule_immutable": "Bản sao không thể sửa xoá", "rule_errors": "Lỗi ở lần kiểm tra gần nhất (chưa kiểm tra tính là một lỗi)",
		"op_restore": "khôi phục", "op_drill": "diễn tập",
		"never": "chưa bao giờ",
	},
	"zh": {
		"title": "月度备份报告", "generated": "生成时间", "repository": "存储库",
		"overview": "概览", "runs": "操作次数", "success": "成功率", "added": "新增数据",
		"snapshots": "快照", "unresolved": "未解决的故障", "mttr": "平均修复时间",
		"jobs": "各作业备份成功率", "job": "作业", "ok": "成功", "degraded": "降级", "failed": "失败",
		"sizes": "每日新增数据", "durations": "每日平均备份时长（秒）",
		"read": "读取", "stored": "新增",
		"copies": "副本", "copy": "副本", "kind": "介质", "reachable": "可访问", "last_sync": "最近同步",
		"last_verify": "最近完整校验", "errors": "错误", "behind": "缺少的快照", "yes": "是", "no": "否",
		"verdict":  "3-2-1-1-0 评估",
		"recovery": "恢复与演练", "time": "时间", "op": "操作", "what": "内容", "result": "结果",
		"rto": "RTO（目标）", "rpo": "RPO（目标）", "none": "本月无。",
		"invoices": "每月受保护的发票数",
		"failures": "故障及其解决方式", "error": "错误", "resolved": "解决",
		"not_resolved": "未解决", "after": "耗时",
		"verdict_met": "达标", "verdict_not_met": "未达标", "criterion_met": "达标", "criterion_missing": "不足",
		"rule_copies": "副本数", "rule_media": "介质种类", "rule_offsite": "异地副本",
		"rule_immutable": "不可篡改副本", "rule_errors": "最近一次校验的错误（从未校验计为一个）",
		"op_restore": "恢复", "op_drill": "演练",
		"never": "从未",
	},
}

// Languages the report can be written in.
var Languages = []string{"en", "vi", "zh"}

// word translates a value the report shows (a result such as ok or
// failed, an operation with prefix "op_"); an unknown value is shown as
// it is.
func word(lang, prefix, v string) string {
	if _, ok := labels["en"][prefix+v]; ok {
		return label(lang, prefix+v)
	}
	return v
}

func label(lang, key string) string {
	if s, ok := labels[lang][key]; ok {
		return s
	}
	return labels["en"][key]
}

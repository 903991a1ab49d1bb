package corpus

import (
	"fmt"
	"strings"
)

// The sellers, product lists and name parts below are fictional. Tax codes
// follow the Vietnamese shape (10 digits, or 10+"-"+3 for a branch) but are
// made up; MSTTCGP values are provider codes as seen in real files.

type product struct {
	name  string
	unit  string
	lo    int64 // unit price range in VND
	hi    int64
	rate  string
	fracQ bool // quantities with decimals (m3, kg, ...)
}

type seriesDef struct {
	kind    byte // 'C' coded by the tax authority, 'K' uncoded
	typ     byte // 'T' for registered organisations
	letters string
}

type seller struct {
	mst, name, addr, phone, email, bankAcct, bankName, website string
	form                                                       byte // KHMSHDon: '1' VAT invoice, '2' sales invoice
	thdon                                                      string
	pban                                                       string
	provider                                                   string // MSTTCGP
	payment                                                    []string
	series                                                     []seriesDef
	products                                                   []product
	weight                                                     int
	indent                                                     bool // pretty-printed output
	verbose                                                    bool // TTKhac blocks on every line (some vendors do this)
	decimals                                                   bool // amounts written as 200000.0000
	sha256                                                     bool // rsa-sha256 instead of rsa-sha1
	dlID                                                       string
	maxLines                                                   int
}

var productsElectronics = []product{
	{"Điện thoại Samsung Galaxy A15 128GB Đen", "Chiếc", 3990000, 4590000, "10%", false},
	{"Điện thoại iPhone 15 128GB Xanh dương", "Chiếc", 19990000, 22990000, "10%", false},
	{"Máy tính xách tay Dell Inspiron 15 3530 i5", "Chiếc", 14490000, 17990000, "10%", false},
	{"Máy tính bảng iPad Air (Gen 5) WIFI 64GB Tím", "Bộ", 12445454, 13990000, "10%", false},
	{"Tai nghe Bluetooth Sony WH-CH520", "Chiếc", 990000, 1290000, "10%", false},
	{"Cáp sạc USB-C to Lightning 1m", "Sợi", 190000, 490000, "10%", false},
	{"Sạc dự phòng 10000mAh Xiaomi", "Chiếc", 290000, 450000, "10%", false},
	{"Ốp lưng silicon trong suốt", "Chiếc", 50000, 150000, "10%", false},
	{"Dịch vụ bảo hành mở rộng 12 tháng", "Gói", 300000, 900000, "10%", false},
	{"Màn hình LG 27 inch 27MP400-B", "Chiếc", 2890000, 3490000, "10%", false},
	{"Chuột không dây Logitech M331", "Chiếc", 299000, 399000, "10%", false},
	{"Bàn phím cơ AKKO 3087", "Chiếc", 990000, 1490000, "10%", false},
}

var productsBuilding = []product{
	{"Xi măng PCB40 bao 50kg", "Bao", 82000, 96000, "8%", false},
	{"Thép cuộn D8 CB240-T", "Kg", 14800, 16900, "8%", true},
	{"Thép thanh vằn D16 CB400-V", "Kg", 15200, 17400, "8%", true},
	{"Cát vàng xây dựng", "m3", 380000, 520000, "8%", true},
	{"Đá 1x2 xanh", "m3", 310000, 390000, "8%", true},
	{"Gạch đặc A1 6x10.5x22", "Viên", 1150, 1450, "8%", false},
	{"Gạch ốp lát 60x60 Viglacera", "m2", 165000, 245000, "8%", true},
	{"Sơn nội thất Dulux 5 lít", "Thùng", 690000, 1150000, "8%", false},
	{"Ống nhựa PVC D90 Tiền Phong", "Cây", 145000, 210000, "8%", false},
	{"Cước vận chuyển vật liệu đến công trình", "Chuyến", 800000, 2500000, "8%", false},
}

var productsFood = []product{
	{"Nước mắm Phú Quốc 40 độ đạm chai 500ml", "Chai", 45000, 68000, "5%", false},
	{"Gạo ST25 túi 5kg", "Túi", 165000, 210000, "5%", false},
	{"Cà phê rang xay Buôn Ma Thuột 500g", "Gói", 95000, 160000, "10%", false},
	{"Mì ăn liền thùng 30 gói", "Thùng", 98000, 125000, "10%", false},
	{"Dầu ăn Tường An 1 lít", "Chai", 42000, 52000, "10%", false},
	{"Đường kính trắng Biên Hòa 1kg", "Gói", 24000, 29000, "5%", false},
	{"Sữa tươi tiệt trùng hộp 1 lít", "Hộp", 32000, 38000, "5%", false},
	{"Bánh phồng tôm Sa Giang 200g", "Gói", 28000, 36000, "10%", false},
	{"Trái cây sấy dẻo hỗn hợp 500g", "Hộp", 120000, 180000, "5%", false},
	{"Nước khoáng đóng chai 500ml thùng 24 chai", "Thùng", 85000, 110000, "10%", false},
}

var productsLogistics = []product{
	{"Cước vận chuyển container 40' Hải Phòng - Hà Nội", "Chuyến", 6500000, 9800000, "8%", false},
	{"Cước vận chuyển container 20' Đình Vũ - Bắc Ninh", "Chuyến", 4200000, 6200000, "8%", false},
	{"Phí nâng hạ container tại cảng", "Cont", 650000, 1100000, "8%", false},
	{"Phí lưu bãi container rỗng", "Ngày", 120000, 250000, "8%", false},
	{"Phí lưu kho hàng hóa", "m2/tháng", 85000, 140000, "8%", true},
	{"Phí làm thủ tục hải quan", "Tờ khai", 500000, 1500000, "8%", false},
	{"Phí vệ sinh container", "Cont", 150000, 300000, "8%", false},
	{"Phí chứng từ (D/O)", "Bộ", 750000, 1200000, "0%", false},
	{"Phụ phí xăng dầu", "Chuyến", 300000, 900000, "8%", false},
}

var productsWater = []product{
	{"Tiền nước sinh hoạt bậc 1 (0-10 m3)", "m3", 6869, 6869, "5%", true},
	{"Tiền nước sinh hoạt bậc 2 (10-20 m3)", "m3", 8110, 8110, "5%", true},
	{"Tiền nước sinh hoạt bậc 3 (20-30 m3)", "m3", 9969, 9969, "5%", true},
	{"Tiền nước sinh hoạt trên 30 m3", "m3", 18318, 18318, "5%", true},
	{"Tiền nước kinh doanh dịch vụ", "m3", 22068, 22068, "5%", true},
	{"Phí bảo vệ môi trường đối với nước thải", "m3", 687, 2207, "KKKNT", true},
	{"Phí thay đồng hồ nước", "Lần", 350000, 550000, "10%", false},
}

var productsSoftware = []product{
	{"Phí duy trì phần mềm hóa đơn điện tử 12 tháng", "Gói", 990000, 1990000, "10%", false},
	{"Gói 500 hóa đơn điện tử", "Gói", 390000, 590000, "10%", false},
	{"Gói 2000 hóa đơn điện tử", "Gói", 1190000, 1590000, "10%", false},
	{"Dịch vụ chữ ký số USB Token 1 năm", "Gói", 1490000, 1890000, "10%", false},
	{"Dịch vụ chữ ký số từ xa 3 năm", "Gói", 3190000, 3990000, "10%", false},
	{"Phần mềm kế toán bản quyền 1 năm", "Bản", 2990000, 5990000, "KCT", false},
	{"Dịch vụ triển khai và đào tạo", "Ngày công", 1500000, 2500000, "10%", false},
	{"Dịch vụ lưu trữ đám mây 100GB", "Tháng", 150000, 300000, "10%", false},
}

var productsPharmacy = []product{
	{"Paracetamol 500mg hộp 10 vỉ x 10 viên", "Hộp", 18000, 35000, "5%", false},
	{"Vitamin C 1000mg sủi tuýp 20 viên", "Tuýp", 45000, 85000, "5%", false},
	{"Khẩu trang y tế 4 lớp hộp 50 cái", "Hộp", 30000, 60000, "5%", false},
	{"Nước muối sinh lý 0.9% chai 500ml", "Chai", 6000, 12000, "5%", false},
	{"Amoxicillin 500mg hộp 10 vỉ", "Hộp", 65000, 95000, "5%", false},
	{"Máy đo huyết áp bắp tay Omron", "Chiếc", 890000, 1290000, "5%", false},
	{"Dầu gió xanh Thiên Thảo 12ml", "Chai", 22000, 32000, "5%", false},
	{"Băng cá nhân hộp 100 miếng", "Hộp", 25000, 40000, "5%", false},
}

var productsRestaurant = []product{
	{"Lẩu cá kèo", "Nồi", 280000, 380000, "KCT", false},
	{"Gà ta luộc lá chanh", "Con", 350000, 450000, "KCT", false},
	{"Cơm chiên hải sản", "Đĩa", 85000, 120000, "KCT", false},
	{"Rau muống xào tỏi", "Đĩa", 45000, 60000, "KCT", false},
	{"Bia Sài Gòn lon 330ml", "Lon", 18000, 25000, "KCT", false},
	{"Nước ngọt các loại", "Lon", 15000, 20000, "KCT", false},
	{"Canh chua cá lóc", "Tô", 120000, 160000, "KCT", false},
	{"Tiền phòng tiệc", "Phòng", 500000, 1500000, "KCT", false},
}

var sellers = []seller{
	{
		mst: "0317245680", name: "Công ty Cổ phần Thương mại Điện tử Sao Mai",
		addr:  "Tầng 5, Tòa nhà Sao Mai, 215 Nguyễn Văn Thủ, Phường Đa Kao, Quận 1, Thành phố Hồ Chí Minh",
		phone: "02838221456", email: "ketoan@saomai-shop.vn", bankAcct: "0071001234567", bankName: "Ngân hàng TMCP Ngoại thương Việt Nam - CN Tân Định",
		website: "https://saomai-shop.vn", form: '1', thdon: "Hóa đơn giá trị gia tăng", pban: "2.0.1", provider: "0100109106",
		payment:  []string{"TM/CK", "Chuyển khoản", "Thẻ tín dụng"},
		series:   []seriesDef{{'K', 'T', "SM"}, {'K', 'T', "OL"}},
		products: productsElectronics, weight: 30, verbose: true, dlID: "guid", maxLines: 8,
	},
	{
		mst: "0108823517", name: "Công ty TNHH Vật liệu Xây dựng Phúc Lộc Thành",
		addr:  "Số 86 Đường Ngọc Hồi, Phường Hoàng Liệt, Quận Hoàng Mai, Thành phố Hà Nội",
		phone: "02436412789", email: "hoadon@phucloctanh.com.vn", bankAcct: "12510000987654", bankName: "Ngân hàng TMCP Đầu tư và Phát triển Việt Nam - CN Hoàng Mai",
		form: '1', thdon: "Hóa đơn giá trị gia tăng", pban: "2.0.0", provider: "0106026495",
		payment:  []string{"Chuyển khoản", "TM/CK"},
		series:   []seriesDef{{'C', 'T', "PL"}},
		products: productsBuilding, weight: 12, decimals: true, dlID: "SigningData", maxLines: 20,
	},
	{
		mst: "1801672349", name: "Công ty Cổ phần Thực phẩm Miền Tây Xanh",
		addr:  "Lô 12A, Khu công nghiệp Trà Nóc 1, Phường Trà Nóc, Quận Bình Thủy, Thành phố Cần Thơ",
		phone: "02923841567", email: "invoice@mientayxanh.vn", bankAcct: "7601234567890", bankName: "Ngân hàng Nông nghiệp và Phát triển Nông thôn Việt Nam - CN Cần Thơ",
		form: '1', thdon: "Hóa đơn giá trị gia tăng", pban: "2.0.1", provider: "0100109106",
		payment:  []string{"TM/CK", "Công nợ 30 ngày"},
		series:   []seriesDef{{'C', 'T', "MT"}, {'C', 'T', "DL"}},
		products: productsFood, weight: 18, indent: true, dlID: "DLHDon", maxLines: 25,
	},
	{
		mst: "0201845276", name: "Công ty TNHH Logistics Cảng Hải An",
		addr:  "Số 1 Đường Đình Vũ, Phường Đông Hải 2, Quận Hải An, Thành phố Hải Phòng",
		phone: "02253769012", email: "accounting@haianport-log.vn", bankAcct: "105000123456", bankName: "Ngân hàng TMCP Công thương Việt Nam - CN Hải Phòng",
		form: '1', thdon: "Hóa đơn giá trị gia tăng", pban: "2.0.0", provider: "0200784873",
		payment:  []string{"Chuyển khoản", "Tiền mặt/Chuyển khoản"},
		series:   []seriesDef{{'C', 'T', "HA"}},
		products: productsLogistics, weight: 10, decimals: true, dlID: "SigningData", maxLines: 10,
	},
	{
		mst: "0800411935", name: "Công ty Cổ phần Cấp nước Bình Giang",
		addr:  "Số 10 Đường Trần Hưng Đạo, Thị trấn Kẻ Sặt, Huyện Bình Giang, Tỉnh Hải Dương",
		phone: "02203776221", email: "cskh@capnuocbinhgiang.vn", bankAcct: "46010000112233", bankName: "Ngân hàng TMCP Đầu tư và Phát triển Việt Nam - CN Hải Dương",
		website: "https://capnuocbinhgiang.vn", form: '1', thdon: "Hóa đơn giá trị gia tăng (Tiền nước)", pban: "2.1.0", provider: "0100109106",
		payment:  []string{"Tiền mặt/Chuyển khoản", "Thu hộ qua ngân hàng"},
		series:   []seriesDef{{'C', 'T', "BG"}, {'C', 'T', "KS"}, {'C', 'T', "TH"}},
		products: productsWater, weight: 40, dlID: "SigningData", maxLines: 5,
	},
	{
		mst: "0109934102", name: "Công ty TNHH Giải pháp Phần mềm Việt Số",
		addr:  "Tầng 9, Tòa nhà Hapro, 11B Cát Linh, Phường Cát Linh, Quận Đống Đa, Thành phố Hà Nội",
		phone: "02437325588", email: "billing@vietso.com.vn", bankAcct: "19032145678011", bankName: "Ngân hàng TMCP Kỹ thương Việt Nam",
		website: "https://vietso.com.vn", form: '1', thdon: "Hóa đơn giá trị gia tăng", pban: "2.0.1", provider: "0109934102",
		payment:  []string{"Chuyển khoản"},
		series:   []seriesDef{{'K', 'T', "VS"}, {'C', 'T', "VS"}},
		products: productsSoftware, weight: 8, sha256: true, dlID: "guid", maxLines: 6,
	},
	{
		mst: "0313560287-012", name: "Chi nhánh Công ty Cổ phần Dược phẩm An Tâm – Nhà thuốc An Tâm số 12",
		addr:  "124 Lê Văn Sỹ, Phường 13, Quận 3, Thành phố Hồ Chí Minh",
		phone: "02839312012", email: "nhathuoc12@antampharma.vn",
		form: '2', thdon: "Hóa đơn bán hàng", pban: "2.0.1", provider: "0100109106",
		payment:  []string{"Tiền mặt", "TM/CK"},
		series:   []seriesDef{{'C', 'T', "AT"}},
		products: productsPharmacy, weight: 14, verbose: true, dlID: "DLHDon", maxLines: 12,
	},
	{
		mst: "4101593826", name: "Hộ kinh doanh Nhà hàng Bếp Quê Bình Định",
		addr:  "56 Xuân Diệu, Phường Trần Phú, Thành phố Quy Nhơn, Tỉnh Bình Định",
		phone: "0905123789", email: "bepque.quynhon@gmail.com",
		form: '2', thdon: "Hóa đơn bán hàng", pban: "2.0.0", provider: "0106026495",
		payment:  []string{"Tiền mặt", "Chuyển khoản"},
		series:   []seriesDef{{'C', 'T', "BQ"}},
		products: productsRestaurant, weight: 6, indent: true, decimals: true, dlID: "SigningData", maxLines: 14,
	},
}

func sellerByMST(mst string) (int, bool) {
	for i := range sellers {
		if sellers[i].mst == mst {
			return i, true
		}
	}
	return 0, false
}

// seriesName returns KHHDon, e.g. C24TAA.
func seriesName(d seriesDef, year int) string {
	return fmt.Sprintf("%c%02d%c%s", d.kind, year%100, d.typ, d.letters)
}

var (
	companyKinds = []string{"Công ty TNHH", "Công ty Cổ phần", "Công ty TNHH MTV", "Công ty TNHH Một thành viên", "Doanh nghiệp tư nhân", "Hợp tác xã"}
	companyTrade = []string{"Thương mại", "Dịch vụ", "Xây dựng", "Kỹ thuật", "Vận tải", "Sản xuất", "Đầu tư", "Phát triển", "Xuất nhập khẩu", "Công nghệ", "Thương mại và Dịch vụ", "Đầu tư Xây dựng", "Cơ khí", "Nội thất", "Môi trường"}
	companyNames = []string{"Hoàng Long", "Minh Phát", "An Khang", "Thành Đạt", "Phú Thịnh", "Bình Minh", "Sao Việt", "Đại Nam", "Hưng Thịnh", "Tân Phú", "Việt Tiến", "Hòa Bình", "Trường Sơn", "Nam Việt", "Kim Ngân", "Phương Đông", "Thiên Ân", "Lộc Phát", "Gia Huy", "Đông Á", "Quang Minh", "Toàn Cầu", "Hải Đăng", "Trí Việt"}
	familyNames  = []string{"Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô", "Dương", "Lý"}
	middleNames  = []string{"Văn", "Thị", "Hữu", "Đức", "Minh", "Ngọc", "Thanh", "Quốc", "Thu", "Gia", "Xuân"}
	givenNames   = []string{"An", "Bình", "Chi", "Dũng", "Giang", "Hà", "Hải", "Hạnh", "Hùng", "Hương", "Khánh", "Lan", "Linh", "Long", "Mai", "Nam", "Phương", "Quân", "Sơn", "Thảo", "Trang", "Tuấn", "Việt", "Yến"}
	streets      = []string{"Nguyễn Trãi", "Lê Lợi", "Trần Hưng Đạo", "Hai Bà Trưng", "Lý Thường Kiệt", "Điện Biên Phủ", "Cách Mạng Tháng Tám", "Nguyễn Văn Linh", "Phạm Văn Đồng", "Võ Văn Kiệt", "Lạch Tray", "Hùng Vương", "Quang Trung", "Bạch Đằng", "Tôn Đức Thắng"}
	places       = []struct{ ward, district, city, mstPrefix string }{
		{"Phường Dịch Vọng Hậu", "Quận Cầu Giấy", "Thành phố Hà Nội", "01"},
		{"Phường Láng Hạ", "Quận Đống Đa", "Thành phố Hà Nội", "01"},
		{"Phường Bến Nghé", "Quận 1", "Thành phố Hồ Chí Minh", "03"},
		{"Phường Tân Định", "Quận 1", "Thành phố Hồ Chí Minh", "03"},
		{"Phường Hiệp Phú", "Thành phố Thủ Đức", "Thành phố Hồ Chí Minh", "03"},
		{"Phường Đông Khê", "Quận Ngô Quyền", "Thành phố Hải Phòng", "02"},
		{"Phường Hải Châu 1", "Quận Hải Châu", "Thành phố Đà Nẵng", "04"},
		{"Phường An Hòa", "Quận Ninh Kiều", "Thành phố Cần Thơ", "18"},
		{"Phường Hiến Nam", "Thành phố Hưng Yên", "Tỉnh Hưng Yên", "09"},
		{"Phường Võ Cường", "Thành phố Bắc Ninh", "Tỉnh Bắc Ninh", "23"},
		{"Phường Trần Phú", "Thành phố Quy Nhơn", "Tỉnh Bình Định", "41"},
		{"Phường Tân Hiệp", "Thành phố Biên Hòa", "Tỉnh Đồng Nai", "36"},
	}
	emailDomains = []string{"gmail.com", "yahoo.com", "outlook.com", "vnn.vn", "fpt.vn"}
)

type buyer struct {
	id                    int
	name, mst, addr, code string
	contact, phone, email string
	bankAcct, bankName    string
	consumer              bool
}

// asciiFold is a crude transliteration used for e-mail addresses.
var asciiFold = strings.NewReplacer(
	"à", "a", "á", "a", "ả", "a", "ã", "a", "ạ", "a", "ă", "a", "ằ", "a", "ắ", "a", "ẳ", "a", "ẵ", "a", "ặ", "a",
	"â", "a", "ầ", "a", "ấ", "a", "ẩ", "a", "ẫ", "a", "ậ", "a", "đ", "d", "Đ", "d",
	"è", "e", "é", "e", "ẻ", "e", "ẽ", "e", "ẹ", "e", "ê", "e", "ề", "e", "ế", "e", "ể", "e", "ễ", "e", "ệ", "e",
	"ì", "i", "í", "i", "ỉ", "i", "ĩ", "i", "ị", "i",
	"ò", "o", "ó", "o", "ỏ", "o", "õ", "o", "ọ", "o", "ô", "o", "ồ", "o", "ố", "o", "ổ", "o", "ỗ", "o", "ộ", "o",
	"ơ", "o", "ờ", "o", "ớ", "o", "ở", "o", "ỡ", "o", "ợ", "o",
	"ù", "u", "ú", "u", "ủ", "u", "ũ", "u", "ụ", "u", "ư", "u", "ừ", "u", "ứ", "u", "ử", "u", "ữ", "u", "ự", "u",
	"ỳ", "y", "ý", "y", "ỷ", "y", "ỹ", "y", "ỵ", "y", " ", "",
)

func slug(s string) string { return asciiFold.Replace(strings.ToLower(s)) }

// makeBuyer derives buyer number id of the pool from the corpus seed, so the
// same customer looks the same on every invoice and in the dump.
func makeBuyer(seed int64, id int) buyer {
	r := newRNG(seed, streamBuyer, uint64(id))
	pl := pick(r, places)
	b := buyer{id: id}
	b.addr = fmt.Sprintf("Số %d %s, %s, %s, %s", r.between(1, 399), pick(r, streets), pl.ward, pl.district, pl.city)
	if r.chance(0.25) {
		b.consumer = true
		b.name = pick(r, familyNames) + " " + pick(r, middleNames) + " " + pick(r, givenNames)
		b.phone = "09" + r.digits(8)
		if r.chance(0.5) {
			b.email = slug(b.name) + r.digits(2) + "@" + pick(r, emailDomains)
		}
		return b
	}
	b.name = strings.ToUpper(pick(r, companyKinds) + " " + pick(r, companyTrade) + " " + pick(r, companyNames))
	if r.chance(0.5) {
		b.name = pick(r, companyKinds) + " " + pick(r, companyTrade) + " " + pick(r, companyNames)
	}
	b.mst = pl.mstPrefix + r.digits(8)
	b.code = fmt.Sprintf("KH%05d", id)
	b.contact = pick(r, familyNames) + " " + pick(r, middleNames) + " " + pick(r, givenNames)
	b.phone = "0" + pick(r, []string{"24", "28", "225", "236", "292"}) + r.digits(7)
	b.email = "ketoan." + slug(pick(r, companyNames)) + "@" + pick(r, emailDomains)
	if r.chance(0.4) {
		b.bankAcct = r.digits(r.between(10, 14))
		b.bankName = pick(r, []string{"Ngân hàng TMCP Á Châu", "Ngân hàng TMCP Quân đội", "Ngân hàng TMCP Sài Gòn Thương Tín", "Ngân hàng TMCP Việt Nam Thịnh Vượng"})
	}
	return b
}

func buyerPoolSize(files int) int {
	n := files / 20
	if n < 50 {
		n = 50
	}
	if n > 20000 {
		n = 20000
	}
	return n
}

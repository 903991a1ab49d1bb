module github.com/einvault/einvault

go 1.26.8

module kmcp-guard

go 1.22

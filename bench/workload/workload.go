// Package workload is the entry every benchmark of the bench module sends:
// one error entry of a typical service, the same for every client.
package workload

const (
	// Message is about 80 bytes.
	Message = "payment authorization failed for order 7f3a9c2e: card issuer declined with code 05"

	// Traceback is a 5-line stack trace of about 400 bytes; its newlines
	// make every client send it in the protocol's binary form.
	Traceback = "goroutine 1047 [running, locked to thread]:\n" +
		"github.com/acme/payments/internal/payment.(*Service).Authorize(0xc000118a20, {0x9a1c40, 0xc00031e000}, {0xc0002b4f40, 0x24}, 0x1f4)\n" +
		"\t/srv/payments/internal/payment/service.go:218 +0x1c5\n" +
		"github.com/acme/payments/internal/httpapi.(*Handler).ServeHTTP(0xc0001a4000, {0x9a1c40, 0xc0002b61c0}, 0xc000312300)\n" +
		"\t/srv/payments/internal/httpapi/handler.go:97 +0x2e8"
)

// Fields are the five fields besides MESSAGE, PRIORITY (3, err) and
// SYSLOG_IDENTIFIER, in the order they are sent: name, value.
var Fields = [5][2]string{
	{"TRACEBACK", Traceback},
	{"REQUEST_ID", "5f0c6e1a-93b2-4d7e-8a41-2c9b7d3e6f10"},
	{"USER_ID", "u-48213"},
	{"HTTP_STATUS", "502"},
	{"DURATION_MS", "1843"},
}

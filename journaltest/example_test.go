package journaltest_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/newstyle-go/newstyle"
	"github.com/newstyle-go/newstyle/journaltest"
)

// A test of a program's logging, without a journald: the logger is pointed
// at a Server, and what it sent is read back field by field. In a test,
// journaltest.NewServer(t) makes the socket in t.TempDir() and closes it
// when the test ends.
func Example() {
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	srv, err := journaltest.Listen(filepath.Join(dir, "socket"))
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	logger := newstyle.NewLogger(&newstyle.Options{
		Target:           newstyle.TargetJournal,
		SocketPath:       srv.Path(),
		SyslogIdentifier: "shop",
	})
	logger.Warn("payment declined", "order_id", "A-1042", "retry", true)

	for deadline := time.Now().Add(5 * time.Second); len(srv.Entries()) < 1 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	for _, f := range srv.Entries()[0].Fields {
		fmt.Printf("%s=%s\n", f.Name, f.Value)
	}
	fmt.Println("errors:", srv.Err())
	// Output:
	// MESSAGE=payment declined
	// PRIORITY=4
	// SYSLOG_IDENTIFIER=shop
	// ORDER_ID=A-1042
	// RETRY=true
	// errors: <nil>
}

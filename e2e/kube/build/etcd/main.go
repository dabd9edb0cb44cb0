// Command etcd runs the etcd server of go.etcd.io/etcd/server/v3. The server module has no main package of
// its own (the release binary lives in the repository's root module, which is not published for `go build`),
// so this wrapper calls the same entry point the release binary calls.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}

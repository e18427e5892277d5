package proxy

import (
	"testing"

	"github.com/shardgate/shardgate/router"
)

// TestReconfigureRouter: a reload that builds a new router (its parse
// cache size or write functions changed) puts it in force; one without
// keeps the running router.
func TestReconfigureRouter(t *testing.T) {
	s := NewServer(Options{})
	defer s.Close()
	r := router.New(router.Options{})
	s.Reconfigure(Options{Router: r})
	if s.o().Router != r {
		t.Fatal("Reconfigure did not put the new router in force")
	}
	s.Reconfigure(Options{})
	if s.o().Router != r {
		t.Fatal("Reconfigure without a router replaced the running one")
	}
}

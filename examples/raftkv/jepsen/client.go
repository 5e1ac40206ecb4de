package jepsen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Client is one of the workload's clients: it runs one operation at a
// time against the node it believes leads, following redirects itself.
type Client struct {
	ID    int
	c     *Cluster
	h     *History
	http  *http.Client
	rng   *rand.Rand
	node  string // the HTTP address it sends to next
	seq   int
	Keys  []string // the registers it reads and writes
	Acked []string // write-once keys whose PUT was acknowledged
	Maybe []string // ... whose outcome is unknown
	Nope  []string // ... whose PUT failed
}

// clientTimeout bounds one HTTP request; a PUT still waiting then has an
// unknown outcome.
const clientTimeout = 2 * time.Second

// maxHops bounds the redirects one operation follows.
const maxHops = 3

// NewClient returns client id of the workload, seeded from rng.
func NewClient(id int, c *Cluster, h *History, keys []string, seed uint64) *Client {
	cl := &Client{ID: id, c: c, h: h, Keys: keys, rng: rand.New(rand.NewPCG(seed, uint64(id)))}
	cl.http = &http.Client{Timeout: clientTimeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	cl.pick()
	return cl
}

// pick sends the next request to a random node.
func (cl *Client) pick() { cl.node = cl.c.Nodes[cl.rng.IntN(len(cl.c.Nodes))].HTTPAddr }

// Run runs operations until ctx ends: reads and writes of the registers,
// and now and then a PUT of a key of its own, written once, that must
// survive everything (OnceKey).
func (cl *Client) Run(ctx context.Context) {
	for ctx.Err() == nil {
		var op Op
		switch r := cl.rng.Float64(); {
		case r < 0.45:
			op = cl.Get(cl.Keys[cl.rng.IntN(len(cl.Keys))])
		case r < 0.9:
			op = cl.Put(cl.Keys[cl.rng.IntN(len(cl.Keys))])
		default:
			key := fmt.Sprintf("once-%d-%d", cl.ID, cl.seq)
			switch op = cl.Put(key); op.Outcome {
			case OK:
				cl.Acked = append(cl.Acked, key)
			case Unknown:
				cl.Maybe = append(cl.Maybe, key)
			default:
				cl.Nope = append(cl.Nope, key)
			}
		}
		if op.Outcome != OK {
			// No leader, or none reachable: back off a little instead of
			// filling the history with failures.
			time.Sleep(time.Duration(10+cl.rng.IntN(40)) * time.Millisecond)
		}
	}
}

// Put writes a value unique to this PUT under key and records it.
func (cl *Client) Put(key string) Op {
	cl.seq++
	op := Op{Client: cl.ID, Put: true, Key: key, Value: fmt.Sprintf("c%d-%d", cl.ID, cl.seq), Call: cl.h.Now()}
	op.Outcome = cl.put(key, op.Value)
	op.Ret = cl.h.Now()
	cl.h.Add(op)
	return op
}

func (cl *Client) put(key, val string) Outcome {
	for range maxHops {
		req, err := http.NewRequest(http.MethodPut, "http://"+cl.node+"/kv/"+key, strings.NewReader(val))
		if err != nil {
			panic(err)
		}
		resp, err := cl.http.Do(req)
		if err != nil {
			cl.pick()
			if errors.Is(err, syscall.ECONNREFUSED) {
				return Failed // nothing was sent
			}
			return Unknown
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusNoContent:
			return OK
		case http.StatusTemporaryRedirect:
			if !cl.follow(resp) {
				return Failed
			}
		case http.StatusServiceUnavailable:
			cl.pick()
			return Failed
		default: // 504: it may be committed; 500: who knows
			cl.pick()
			return Unknown
		}
	}
	return Failed // every answer was a redirect: nothing was written
}

// Get reads key and records it (a failed read too: Prepare drops it).
func (cl *Client) Get(key string) Op {
	op := Op{Client: cl.ID, Key: key, Call: cl.h.Now()}
	op.Outcome, op.Found, op.Value = cl.get(key)
	op.Ret = cl.h.Now()
	cl.h.Add(op)
	return op
}

func (cl *Client) get(key string) (Outcome, bool, string) {
	for range maxHops {
		resp, err := cl.http.Get("http://" + cl.node + "/kv/" + key)
		if err != nil {
			cl.pick()
			return Failed, false, ""
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case err != nil:
			cl.pick()
			return Failed, false, ""
		case resp.StatusCode == http.StatusOK:
			return OK, true, string(b)
		case resp.StatusCode == http.StatusNotFound:
			return OK, false, ""
		case resp.StatusCode == http.StatusTemporaryRedirect:
			if !cl.follow(resp) {
				return Failed, false, ""
			}
		default:
			cl.pick()
			return Failed, false, ""
		}
	}
	return Failed, false, ""
}

// follow points the client at a redirect's Location.
func (cl *Client) follow(resp *http.Response) bool {
	u, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || u.Host == "" {
		cl.pick()
		return false
	}
	cl.node = u.Host
	return true
}

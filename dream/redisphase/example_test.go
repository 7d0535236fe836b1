package redisphase_test

import (
	"context"
	"fmt"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/talos-ironclad/talos/dream/redisphase"
)

func Example() {
	mr, err := miniredis.Run()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	ctx := context.Background()
	for _, k := range []string{"talos:cache:a", "talos:cache:b", "talos:breaker:gemini", "talos:history:s1"} {
		rdb.Set(ctx, k, "v", 0)
	}

	// Even "talos:" as a disposable prefix leaves the breaker and the chat
	// history alone.
	c, err := redisphase.New(redisphase.Config{Disposable: []string{"talos:"}}, rdb)
	if err != nil {
		fmt.Println(err)
		return
	}
	res, err := c.Run(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("deleted", res.Counters["keys_deleted"], "protected", res.Counters["keys_protected"])
	fmt.Println(rdb.Keys(ctx, "*").Val())
	// Output:
	// deleted 2 protected 2
	// [talos:breaker:gemini talos:history:s1]
}

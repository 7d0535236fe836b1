package redis_test

import (
	"context"
	"fmt"

	"github.com/alicebob/miniredis/v2"
	goredis "github.com/redis/go-redis/v9"

	"github.com/talos-ironclad/talos/rag"
	ragredis "github.com/talos-ironclad/talos/rag/redis"
)

func ExampleNew() {
	mr, _ := miniredis.Run() // a real Redis in production
	defer mr.Close()
	rdb := goredis.NewClient(&goredis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	ctx := context.Background()
	h, _ := ragredis.New(rag.HistoryConfig{Limit: 2}, rdb)
	for _, s := range []string{"hi", "how are you?", "fine"} {
		_ = h.Append(ctx, "session-1", rag.Message{Role: "user", Content: s})
	}
	msgs, _ := h.Recent(ctx, "session-1", 0)
	for _, m := range msgs {
		fmt.Println(m.Content)
	}
	// Output:
	// how are you?
	// fine
}

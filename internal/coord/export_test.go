package coord

import (
	"context"

	"github.com/go-zookeeper/zk"
)

// DeleteForTest deletes p as this session may.
func (c *Conn) DeleteForTest(ctx context.Context, p string) error {
	return c.call(ctx, func() error { return c.zk.Delete(p, -1) })
}

// ACLForTest reads p's ACL.
func (c *Conn) ACLForTest(ctx context.Context, p string) ([]zk.ACL, error) {
	var acl []zk.ACL
	err := c.call(ctx, func() error {
		var err error
		acl, _, err = c.zk.GetACL(p)
		return err
	})
	return acl, err
}

// Sends Segment e-commerce spec v2 events with the official Node SDK to the
// host in HERD_HOST, as a shop's backend would. Run by segment_sdk_test.go.
import { Analytics } from '@segment/analytics-node'

const analytics = new Analytics({
  writeKey: process.env.WRITE_KEY,
  host: process.env.HERD_HOST,
  path: '/v1/batch',
  maxEventsInBatch: 5,
  flushInterval: 200,
})
analytics.on('error', (err) => {
  console.error('segment error:', err)
  process.exitCode = 1
})

const context = {
  ip: '203.0.113.42',
  userAgent: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15',
  page: { url: 'https://shop.example/product/p-42-linen-shirt?utm_source=newsletter&email=jane@example.com', referrer: 'https://www.google.com/search?q=linen' },
}
const anonymousId = 'anon-7f3c'
const product = { product_id: 'P-42', sku: 'LS-42', category: 'shirts', name: 'Linen shirt', price: 49.9, position: 3 }

analytics.page({ anonymousId, name: 'Linen shirt', context })
analytics.track({ anonymousId, event: 'Product List Viewed', properties: { list_id: 'category:shirts', category: 'shirts', products: [{ product_id: 'P-41', position: 1 }, { product_id: 'P-42', position: 2 }] }, context })
analytics.track({ anonymousId, event: 'Product Clicked', properties: { ...product, list_id: 'category:shirts' }, context })
analytics.track({ anonymousId, event: 'Product Viewed', properties: product, context })
analytics.track({ anonymousId, event: 'Product Added', properties: { ...product, quantity: 1 }, context })
analytics.track({ anonymousId, event: 'Products Searched', properties: { query: 'linen shirt' }, context })
analytics.track({ anonymousId, event: 'Checkout Step Viewed', properties: { checkout_id: 'c-1', step: 2 }, context })
analytics.track({ userId: 'customer-991', event: 'Order Completed', properties: { order_id: 'o-1', total: 99.8, revenue: 99.8, currency: 'EUR', products: [product, { ...product, product_id: 'P-43' }] }, context })
analytics.identify({ userId: 'customer-991', traits: { email: 'jane@example.com' }, context })

await analytics.closeAndFlush({ timeout: 10000 })
console.log('flushed')

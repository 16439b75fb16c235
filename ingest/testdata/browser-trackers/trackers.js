// The two libraries as shops install them from npm, exposed to the test page.
import { AnalyticsBrowser } from '@segment/analytics-next'
import * as plausible from '@plausible-analytics/tracker'

window.herdTrackers = { AnalyticsBrowser, plausible }

// Puppeteer's configuration (read by its install script and at launch, from this directory up).
// No browser download: `npm ci` must not fetch Chrome (mermaid-cli's puppeteer would), and the
// tests and diagram renders use Debian's chromium (scripts/ensure-deps.sh installs it).
module.exports = { skipDownload: true };

// The Account page: storage used against the quota, and "Download my data"
// (a plain link to /api/v1/me/export: the browser saves the zip as it streams).
import { api, attempt, formatBytes } from "./lib.js";

async function showUsage() {
  const usage = await api("GET", "/api/v1/me/usage");
  document.getElementById("usage").textContent = usage.quota_bytes === null
    ? `You use ${formatBytes(usage.used_bytes)}. There is no quota.`
    : `You use ${formatBytes(usage.used_bytes)} of ${formatBytes(usage.quota_bytes)} (${usage.percent}%).`;
}

attempt(showUsage);

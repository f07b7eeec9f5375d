import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

// The dev server proxies the API so `npm run dev` talks to a running `cryptopulse serve`
// on the same origin, exactly as the built app does when the API server serves it.
const api = process.env.CRYPTOPULSE_API_URL ?? "http://127.0.0.1:8000";

export default defineConfig({
  plugins: [react()],
  server: {
    proxy: {
      "/ws": { target: api.replace(/^http/, "ws"), ws: true },
      "/api": { target: api, changeOrigin: true },
      "/healthz": { target: api },
    },
  },
  // No source maps in the built app (1.5 MB of source served to anyone); `npm run dev` has them.
  build: { outDir: "dist", sourcemap: false },
  test: { environment: "node", include: ["src/**/*.test.ts"] },
});

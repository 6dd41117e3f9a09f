import { defineConfig } from "vite";

// Plain ES modules (Preact through htm: no JSX transform), one bundle, no CDN at run time.
export default defineConfig({
  base: "/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 600,
  },
});

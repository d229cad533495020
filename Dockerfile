# sharegraph gateway image. Build: docker build -t sharegraph .
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
COPY bin ./bin
COPY schema ./schema
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/bin ./bin
# The SpiceDB schema is read at start-up (written to SpiceDB, used to validate requests).
COPY --from=build /app/schema ./schema
# Listen on every interface of the container (the port is published; 127.0.0.1
# would only be reachable from inside it), and keep the data directory (the
# embedded default's PGlite and generated keys) where the node user can write.
ENV SHAREGRAPH_ADDR=0.0.0.0:8080 SHAREGRAPH_DATA_DIR=/var/lib/sharegraph
RUN mkdir -p /var/lib/sharegraph && chown node:node /var/lib/sharegraph
VOLUME /var/lib/sharegraph
USER node
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s CMD node -e "fetch('http://127.0.0.1:8080/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "dist/main.js"]

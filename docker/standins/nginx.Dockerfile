# Stand-in for nginx:stable-bookworm where no registry can be reached
# (scripts/compose-test): Debian's nginx, reading /etc/nginx/conf.d/*.conf as
# the official image does, logging to the container's output.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends nginx-light \
 && rm -rf /var/lib/apt/lists/* /etc/nginx/sites-enabled/default \
 && ln -sf /dev/stdout /var/log/nginx/access.log \
 && ln -sf /dev/stderr /var/log/nginx/error.log
CMD ["nginx", "-g", "daemon off;"]

/* aescored: the scoring daemon's main.
 *
 * A straight line, in dependency order (STYLE rule 11, DESIGN section 4):
 *   argv -> signals blocked -> config -> log -> inherited socket -> model (load, or train
 *   from bootstrap_data) -> slot -> trainer -> watcher (watch_model) -> HTTP ->
 *   "listening on" + READY=1 -> sigtimedwait loop -> STOPPING=1 -> HTTP drain -> watcher
 *   join -> trainer cancel/join -> free.
 * SIGTERM, SIGINT and SIGHUP are blocked before the first thread exists, so every thread
 * inherits the mask and the signals are only ever taken here, synchronously: there are no
 * asynchronous handlers and no work in signal context. The loop wakes at least every half
 * watchdog interval (or every second) to ping the watchdog and refresh STATUS=.
 * Exit status: 0 after a clean stop, 1 for a configuration or model error, 2 for a usage
 * error. Record values never reach the log.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "aescore/config.h"
#include "aescore/dataset.h"
#include "aescore/http_server.h"
#include "aescore/listen.h"
#include "aescore/log.h"
#include "aescore/model.h"
#include "aescore/model_file.h"
#include "aescore/model_slot.h"
#include "aescore/notify.h"
#include "aescore/train.h"
#include "aescore/trainer.h"
#include "aescore/util.h"
#include "aescore/watcher.h"

#ifndef AESCORE_VERSION
#define AESCORE_VERSION "0.1.0"
#endif

#define EXIT_USAGE 2

enum {
    ARG_VERSION = 0x100,
    ARG_PRINT_CONFIG,
    ARG_CHECK_CONFIG,
};

typedef struct Args {
    const char *config_path;
    const char *listen;
    const char *model;
    bool print_config;
    bool check_config;
} Args;

static void help(void)
{
    printf("Usage: aescored [OPTION]...\n"
           "Serve anomaly scores for credit records over HTTP and retrain in the background.\n"
           "\n"
           "  -c, --config FILE      read settings from FILE (INI \"key = value\" lines)\n"
           "                         [none: built-in defaults]\n"
           "  -l, --listen HOST:PORT address to serve on, overrides the file [127.0.0.1:8080];\n"
           "                         port 0 picks a free port (see the \"listening on\" log line)\n"
           "  -m, --model PATH       model file, overrides the file [/var/lib/aescored/model.aes]\n"
           "      --print-config     print the settings in effect (file + flags) and exit\n"
           "      --check-config     validate the settings and exit: 0 if valid, 1 if not\n"
           "  -h, --help             show this help and exit\n"
           "      --version          show the version and exit\n"
           "\n"
           "Signals: SIGHUP reloads the model file (a bad file keeps the served model);\n"
           "SIGTERM or SIGINT turn new connections away, finish in-flight requests, cancel\n"
           "training and exit 0. Under systemd: Type=notify, watchdog pings and socket\n"
           "activation.\n"
           "Exit status: 0 stopped cleanly, 1 configuration or model error, 2 usage error.\n");
}

static void usage_hint(void)
{
    fprintf(stderr, "Try 'aescored --help' for more information.\n");
}

/* Returns -1 to continue, else the exit status (help, version, usage errors). */
static int parse_argv(int argc, char **argv, Args *args)
{
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'},
        {"listen", required_argument, NULL, 'l'},
        {"model", required_argument, NULL, 'm'},
        {"print-config", no_argument, NULL, ARG_PRINT_CONFIG},
        {"check-config", no_argument, NULL, ARG_CHECK_CONFIG},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, ARG_VERSION},
        {0},
    };
    int c;

    while ((c = getopt_long(argc, argv, "c:l:m:h", options, NULL)) >= 0) {
        switch (c) {
        case 'c':
            args->config_path = optarg;
            break;
        case 'l':
            args->listen = optarg;
            break;
        case 'm':
            args->model = optarg;
            break;
        case ARG_PRINT_CONFIG:
            args->print_config = true;
            break;
        case ARG_CHECK_CONFIG:
            args->check_config = true;
            break;
        case 'h':
            help();
            return EXIT_SUCCESS;
        case ARG_VERSION:
            printf("aescored %s\n", AESCORE_VERSION);
            return EXIT_SUCCESS;
        default: /* getopt_long printed the reason */
            usage_hint();
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "aescored: unexpected argument '%s'\n", argv[optind]);
        usage_hint();
        return EXIT_USAGE;
    }
    return -1;
}

/* The config: defaults, the file, the command line, then systemd credentials for the
 * secrets the config leaves unset (their names in credentials[], *n_credentials). */
static int load_config(const Args *args, Config *config, const char **credentials,
                       size_t *n_credentials)
{
    char err[512];
    int r;

    config_defaults(config);
    if (args->config_path != NULL) {
        r = config_load(config, args->config_path, err, sizeof(err));
        if (r != 0) {
            fprintf(stderr, "aescored: %s\n", err);
            return EXIT_FAILURE;
        }
    }
    if ((args->listen != NULL &&
         config_set(config, "listen", args->listen, "--listen", 0, err, sizeof(err)) != 0) ||
        (args->model != NULL &&
         config_set(config, "model", args->model, "--model", 0, err, sizeof(err)) != 0)) {
        fprintf(stderr, "aescored: %s\n", err);
        usage_hint();
        return EXIT_USAGE;
    }
    *n_credentials = config_use_credentials(config, getenv("CREDENTIALS_DIRECTORY"), credentials);
    return -1;
}

static void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Logs at err and leaves the reason in STATUS= for `systemctl status`. */
static void fatal(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_err("main", "%s", msg);
    notify_status("failed: %s", msg);
}

/* Outcomes of getting a model to serve. Module codes (MODEL_FILE_E_*, TRAIN_E_*) overlap,
 * so they are reported here and never returned past these functions. */
enum {
    LOAD_OK = 0,
    LOAD_STOPPED, /* SIGTERM/SIGINT during bootstrap training: exit 0 */
    LOAD_FAILED,  /* logged and in STATUS=: exit 1 */
};

typedef struct Bootstrap {
    atomic_bool cancel;
    double t0;
} Bootstrap;

/* Runs on the main thread between epochs: the only point where a bootstrap run can look at
 * the (blocked, hence pending) stop signals and at the service manager's timers. */
static void bootstrap_progress(const TrainProgress *p, void *ctx)
{
    Bootstrap *b = ctx;
    sigset_t pending;
    char line[256];

    train_progress_line(p, line, sizeof(line));
    if (p->member_done)
        log_info("train", "bootstrap: %s, done in %.1f s", line, p->member_seconds);
    else
        log_debug("train", "bootstrap: %s", line);
    notify_status("training the bootstrap model: member %zu/%zu epoch %zu/%zu", p->member + 1,
                  p->members, p->epoch, p->epochs);
    notify_extend_timeout(60ULL * 1000000ULL);
    if (notify_watchdog_usec() > 0)
        notify_watchdog();
    if (sigpending(&pending) == 0 &&
        (sigismember(&pending, SIGTERM) == 1 || sigismember(&pending, SIGINT) == 1))
        atomic_store(&b->cancel, true);
}

/* No model file and bootstrap_data set: train one with the default parameters and save it
 * where the model belongs. Returns 0 and *out, LOAD_STOPPED when a stop signal came in
 * meanwhile, or LOAD_FAILED (logged). */
static int bootstrap_model(const Config *config, Model **out)
{
    DatasetOptions opts = {.label_column = "label", .mixed = true};
    Dataset *ds = NULL;
    Model *m = NULL;
    TrainParams params;
    Bootstrap b = {.t0 = util_now_mono()};
    TrainBudget budget = {config->max_train_parameters, config->max_train_memory};
    TrainEstimate estimate;
    char err[512];
    int r;

    atomic_init(&b.cancel, false);
    log_notice("main", "%s does not exist: training a model from %s first", config->model,
               config->bootstrap_data);
    notify_status("training the bootstrap model from %s", config->bootstrap_data);
    r = dataset_read_csv(config->bootstrap_data, &opts, &ds, err, sizeof(err));
    if (r != 0) {
        fatal("bootstrap_data: %s", err);
        r = LOAD_FAILED;
        goto out;
    }
    train_params_default(&params);
    r = train_check_budget(ds, &params, &budget, &estimate, err, sizeof(err));
    if (r != 0) {
        fatal("bootstrap_data %s: %s", config->bootstrap_data, r < 0 ? strerror(-r) : err);
        r = LOAD_FAILED;
        goto out;
    }
    r = train_model(ds, &params, (int64_t) time(NULL), &b.cancel, bootstrap_progress, &b, &m, err,
                    sizeof(err));
    if (r == TRAIN_E_CANCELLED) {
        log_notice("main", "stop requested during bootstrap training; nothing saved");
        r = LOAD_STOPPED;
        goto out;
    }
    if (r != 0) {
        fatal("training from %s failed: %s", config->bootstrap_data, r < 0 ? strerror(-r) : err);
        r = LOAD_FAILED;
        goto out;
    }
    r = model_file_save(m, config->model, false);
    if (r != 0) {
        fatal("saving %s: %s", config->model, model_file_strerror(r));
        r = LOAD_FAILED;
        goto out;
    }
    log_notice("main",
               "bootstrap: trained on %" PRIu64 " normal rows in %.1f s (threshold %.6g), "
               "saved to %s",
               m->meta.rows, util_now_mono() - b.t0, (double) m->threshold, config->model);
    *out = m;
    m = NULL;
out:
    model_unref(m);
    dataset_free(ds);
    return r;
}

static int load_model(const Config *config, Model **out, const char **source)
{
    Model *m = NULL;
    int r;

    notify_status("loading %s", config->model);
    r = model_file_load(config->model, &m);
    /* A following replica may start before the trainer (or the train Job) has written the
     * file: it serves no model (/health 503, so no traffic) until the watcher loads it. */
    if (r == -ENOENT && config->role == CONFIG_ROLE_REPLICA && config->watch_model) {
        log_notice("main", "%s does not exist yet: not ready until it appears", config->model);
        return LOAD_OK;
    }
    /* Only the trainer writes the model file, a bootstrap model included. */
    *source = "file";
    if (r == -ENOENT && config->bootstrap_data[0] != '\0' && config->role == CONFIG_ROLE_TRAINER) {
        *source = "bootstrap";
        return bootstrap_model(config, out);
    }
    if (r == -ENOENT) {
        fatal("%s: %s; train one with 'aescore train --data FILE.csv --out %s' or set "
              "bootstrap_data",
              config->model, model_file_strerror(r), config->model);
        return LOAD_FAILED;
    }
    if (r != 0) {
        fatal("%s: %s", config->model, model_file_strerror(r));
        return LOAD_FAILED;
    }
    *out = m; /* model_file_load validated it */
    return LOAD_OK;
}

static void format_age(int64_t seconds, char *buf, size_t size)
{
    if (seconds < 60)
        snprintf(buf, size, "less than a minute ago");
    else if (seconds < 3600)
        snprintf(buf, size, "%lld min ago", (long long) (seconds / 60));
    else if (seconds < 48 * 3600)
        snprintf(buf, size, "%lld h ago", (long long) (seconds / 3600));
    else
        snprintf(buf, size, "%lld days ago", (long long) (seconds / 86400));
}

/* "serving model v3 (50 features), trained 2 min ago[; training job 4: epoch 7/100]" */
static void format_status(ModelSlot *slot, Trainer *trainer, char *buf, size_t size)
{
    TrainerStatus st;
    uint64_t version = 0;
    Model *m = model_slot_acquire(slot, &version);
    char age[64];
    int n;

    if (m == NULL) {
        snprintf(buf, size, "no model");
        return;
    }
    format_age((int64_t) time(NULL) - m->meta.created, age, sizeof(age));
    n = snprintf(buf, size, "serving model v%llu (%zu features), trained %s",
                 (unsigned long long) version, m->n_features, age);
    model_unref(m);
    trainer_get_status(trainer, &st);
    if (st.state == TRAINER_RUNNING && n > 0 && (size_t) n < size)
        snprintf(buf + n, size - (size_t) n, "; training job %llu: epoch %llu/%llu",
                 (unsigned long long) st.job_id, (unsigned long long) st.epoch,
                 (unsigned long long) st.epochs);
}

static void reload(ModelSlot *slot, Trainer *trainer, const char *path)
{
    char err[512];
    uint64_t version = 0;

    notify_reloading();
    log_notice("main", "SIGHUP: reloading %s", path);
    if (trainer_reload(trainer, &version, err, sizeof(err)) != 0) {
        Model *m = model_slot_acquire(slot, &version);

        model_unref(m);
        log_err("main", "reload failed, still serving model v%llu: %s",
                (unsigned long long) version, err);
    }
    /* READY=1 ends the reload either way: the old model keeps serving after a failure. */
    notify_ready();
}

static void describe_listener(const Config *config, int listen_fd, const HttpServer *http,
                              char *buf, size_t size)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    ListenAddr a;

    if (listen_fd >= 0 && getsockname(listen_fd, (struct sockaddr *) &ss, &len) == 0) {
        listen_format(&ss, buf, size);
        return;
    }
    listen_parse(config->listen, &a); /* config_set checked it */
    if (strchr(a.host, ':') != NULL)
        snprintf(buf, size, "[%s]:%u", a.host, http_server_port(http));
    else
        snprintf(buf, size, "%s:%u", a.host, http_server_port(http));
}

/* The daemon's parts, made in this order by start_parts and freed in reverse. */
typedef struct Parts {
    ModelSlot *slot;
    Trainer *trainer;
    Watcher *watcher;
    HttpServer *http;
    Recent *recent; /* the records scored lately, for the promotion gate */
    int listen_fd;  /* systemd's socket, or -1 */
} Parts;

/* The socket systemd passed, if any (fd 3), then the rules across config keys. Returns 0,
 * or -1 after fatal(). Before any thread: sd_listen_fds edits the environment. */
static int take_socket(const Config *config, Parts *p)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char err[512], where[300];
    int n = notify_listen_fds();

    if (n >= 1) {
        p->listen_fd = 3;
        if (n > 1)
            log_warning("main", "socket activation passed %d sockets; serving fd 3 only", n);
        if (!config_remote_allowed(config) &&
            getsockname(p->listen_fd, (struct sockaddr *) &ss, &len) == 0 &&
            !listen_sockaddr_is_loopback((const struct sockaddr *) &ss)) {
            listen_format(&ss, where, sizeof(where));
            fatal("refusing to serve the inherited socket %s: not a loopback address and "
                  "no admin_token_file; set admin_token_file, or allow_remote = yes to "
                  "serve other hosts without a token",
                  where);
            return -1;
        }
    }
    if (config_check(config, p->listen_fd >= 0, err, sizeof(err)) != 0) {
        fatal("%s", err);
        return -1;
    }
    return 0;
}

/* Slot (with the model, when there is one), trainer, watcher, HTTP. LOAD_OK, LOAD_STOPPED
 * or LOAD_FAILED (logged). */
static int start_parts(const Config *config, Parts *p)
{
    Model *model = NULL;
    const char *source = "file";
    char err[512] = "";
    int r = load_model(config, &model, &source);

    if (r != LOAD_OK)
        return r;
    r = model_slot_new(&p->slot);
    if (r < 0) {
        model_unref(model);
        fatal("cannot create the model slot: %s", strerror(-r));
        return LOAD_FAILED;
    }
    if (model != NULL)
        model_slot_publish(p->slot, model); /* version 1 */
    if ((r = recent_new(&p->recent, config->recent_records)) == 0)
        r = trainer_new(&p->trainer, p->slot, config, p->recent, err, sizeof(err));
    if (r != 0) {
        fatal("cannot create the trainer: %s", err[0] != '\0' ? err : strerror(r < 0 ? -r : EIO));
        return LOAD_FAILED;
    }
    trainer_register_served(p->trainer, source);
    if (config->watch_model &&
        (r = watcher_new(&p->watcher, p->trainer, config->model, NULL)) < 0) {
        fatal("cannot follow %s: %s", config->model, strerror(-r));
        return LOAD_FAILED;
    }
    r = http_server_new(&p->http, config, p->slot, p->trainer, p->watcher, p->recent, p->listen_fd,
                        err, sizeof(err));
    if (r != 0) {
        fatal("cannot serve HTTP on %s: %s",
              p->listen_fd >= 0 ? "the inherited socket" : config->listen,
              err[0] != '\0' ? err : strerror(r < 0 ? -r : r));
        return LOAD_FAILED;
    }
    return LOAD_OK;
}

/* The sigtimedwait loop: SIGHUP reloads, SIGTERM/SIGINT end it; the watchdog is pinged and
 * STATUS= refreshed at least every half watchdog interval (or every second). */
static void serve(const Config *config, const sigset_t *stop, const Parts *p)
{
    uint64_t watchdog_usec = notify_watchdog_usec(), half = watchdog_usec / 2;
    struct timespec tick = {.tv_sec = 1};
    char status[512], last_status[512] = "";

    if (watchdog_usec > 0)
        tick = (struct timespec){.tv_sec = (time_t) (half / 1000000),
                                 .tv_nsec = (long) (half % 1000000) * 1000};
    for (;;) {
        siginfo_t info;
        int sig;

        format_status(p->slot, p->trainer, status, sizeof(status));
        if (strcmp(status, last_status) != 0) {
            notify_status("%s", status);
            snprintf(last_status, sizeof(last_status), "%s", status);
        }
        if (watchdog_usec > 0)
            notify_watchdog();
        sig = sigtimedwait(stop, &info, &tick);
        if (sig == SIGHUP) {
            reload(p->slot, p->trainer, config->model);
            last_status[0] = '\0'; /* always follow READY=1 with a fresh STATUS= */
        } else if (sig == SIGTERM || sig == SIGINT) {
            log_notice("main", "%s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            return;
        } else if (sig < 0 && errno != EAGAIN && errno != EINTR) {
            log_err("main", "sigtimedwait: %s", strerror(errno));
            return;
        }
    }
}

static int run(const Config *config, const sigset_t *stop)
{
    Parts p = {.listen_fd = -1};
    char where[300], status[512];
    int r, status_code = EXIT_FAILURE;

    if (take_socket(config, &p) != 0)
        goto out;
    r = start_parts(config, &p);
    if (r == LOAD_STOPPED)
        status_code = EXIT_SUCCESS;
    if (r != LOAD_OK)
        goto out;
    describe_listener(config, p.listen_fd, p.http, where, sizeof(where));
    log_notice("main", "listening on %s", where);
    format_status(p.slot, p.trainer, status, sizeof(status));
    log_notice("main", "%s", status);
    notify_ready();
    serve(config, stop, &p);
    notify_stopping();
    notify_status("stopping: finishing in-flight requests");
    http_server_set_stopping(p.http);
    status_code = EXIT_SUCCESS;

out:
    /* Reverse order of creation; each free accepts NULL. */
    http_server_free(p.http);
    watcher_free(p.watcher); /* no reload after this: the trainer can go */
    trainer_free(p.trainer);
    recent_free(p.recent);
    model_slot_free(p.slot);
    if (status_code == EXIT_SUCCESS)
        log_notice("main", "stopped");
    return status_code;
}

int main(int argc, char **argv)
{
    Args args = {0};
    static Config config; /* 12 KiB of paths: not on the stack */
    const char *credentials[CONFIG_CREDENTIALS];
    size_t n_credentials = 0;
    sigset_t stop;
    char err[512];
    int r;

    r = parse_argv(argc, argv, &args);
    if (r >= 0)
        return r;

    /* Before any thread (libmicrohttpd's, the trainer's) so that all of them inherit it. */
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &stop, NULL) < 0) {
        fprintf(stderr, "aescored: sigprocmask: %s\n", strerror(errno));
        return EXIT_FAILURE;
    }
    signal(SIGPIPE, SIG_IGN);

    r = load_config(&args, &config, credentials, &n_credentials);
    if (r >= 0)
        return r;
    if (args.check_config) {
        if (config_check(&config, false, err, sizeof(err)) != 0) {
            fprintf(stderr, "aescored: %s\n", err);
            return EXIT_FAILURE;
        }
        if (!args.print_config)
            printf("%s: OK\n", args.config_path != NULL ? args.config_path : "defaults");
    }
    if (args.print_config) {
        config_print(&config, stdout);
        return fflush(stdout) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
    }
    if (args.check_config)
        return EXIT_SUCCESS;

    log_init(config.log_level);
    log_notice("main", "aescored %s starting (model %s)", AESCORE_VERSION, config.model);
    for (size_t i = 0; i < n_credentials; i++)
        log_info("main", "%s_file = $CREDENTIALS_DIRECTORY/%s (a systemd credential)",
                 credentials[i], credentials[i]);
    return run(&config, &stop);
}

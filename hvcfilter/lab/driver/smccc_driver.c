/*
 * smccc_driver: in-guest half of the hvcfilter real-kernel lab.
 *
 * Runs inside a Linux arm64 kernel (itself inside qemu-system-aarch64 with
 * virtualization=on).  Reads a batch of scenarios in a line-oriented text
 * format, and for each one creates a fresh KVM VM, applies the steps in order
 * (SMCCC filter installs with raw fields, firmware register writes and reads,
 * vCPU creation, first KVM_RUN, guest HVC/SMC calls) and prints one result
 * line per step.  The Python side (hvcfilter/lab/scenario.py) writes the input
 * and parses the output; keep both grammars in step.
 *
 * Input (hex numbers without 0x, one record per line):
 *   T <timeout_ms>                         per-KVM_RUN timeout (global)
 *   S <id> <a64|a32|t32> <psci02> <extra> <suspend>
 *                                          start scenario: vCPU mode, PSCI 0.2
 *                                          feature, powered-off extra vCPUs,
 *                                          KVM_ENABLE_CAP(ARM_SYSTEM_SUSPEND)
 *   F <base> <nr> <action> <pad 30 hex>    KVM_SET_DEVICE_ATTR(SMCCC filter)
 *   A <group> <attr>                       KVM_HAS_DEVICE_ATTR on the VM fd (the probe)
 *   B <reg> <value>                        SET_ONE_REG firmware bitmap reg
 *   G <reg>                                GET_ONE_REG firmware bitmap reg
 *   P <value>                              SET_ONE_REG PSCI_VERSION
 *   V                                      create and init the vCPUs now
 *   N                                      first KVM_RUN (no call)
 *   C <x0> <x1> <x2> <x3> <h|s> <imm> <mode>  guest call
 *   E                                      end scenario
 * Output (between @@HVCLAB-BEGIN and @@HVCLAB-END), one line per step:
 *   U <release>    S <id>    F <errno>    A <errno>    B <errno>    G <errno> <value>
 *   P <errno>      V <errno>  N <errno> <exit>
 *   C <exit> <nr> <flags> <pcadv> <x0> <x1> <x2> <x3> <evtype> <ndata>
 *     <data0> <evx0> <eintr> <errno>
 *   X <errno> <where>   (scenario setup failure; later steps are skipped)
 *   E <id> <usec>
 *
 * Build: aarch64-linux-gnu-gcc -static -O2 -o smccc_driver smccc_driver.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

/* SMCCC filter uapi (Linux 6.4+); the 6.1 cross headers lack it. */
#define SMCCC_CTRL_GROUP 0
#define SMCCC_FILTER_ATTR 0
struct smccc_filter {
	uint32_t base;
	uint32_t nr_functions;
	uint8_t action;
	uint8_t pad[15];
};
_Static_assert(sizeof(struct smccc_filter) == 24, "kvm_smccc_filter is 24 bytes");

/* KVM_CAP_ARM_SYSTEM_SUSPEND arrived in 5.19; spelt out like the filter's constants. */
#define CAP_ARM_SYSTEM_SUSPEND 216

#define EXIT_HYPERCALL 3
#define EXIT_MMIO 6
#define EXIT_SYSTEM_EVENT 24
#define EXIT_INTR 10

#define REG_X(n) (0x6030000000100000ULL + 2ULL * (n))
#define REG_PC 0x6030000000100040ULL
#define REG_PSTATE 0x6030000000100042ULL
#define REG_PSCI_VERSION 0x6030000000140000ULL
#define REG_FW_BMAP(n) (0x6030000000160000ULL + (n))

#define GUEST_BASE 0x40000000ULL
#define GUEST_SIZE 0x40000ULL
#define SNIPPET 128ULL
#define MMIO_ADDR 0x10000000U
#define FWD_MARKER 0x5a5a0000ULL
#define MAX_VCPUS 8
#define MAX_EXITS 64

static unsigned timeout_ms = 2000;
static int kvm_fd = -1;
static long run_size;

struct vm {
	int fd;
	int vcpu[MAX_VCPUS];
	struct kvm_run *run[MAX_VCPUS];
	int nvcpu;
	int extra;
	int mode;		/* 0 a64, 1 a32, 2 t32 */
	int psci02;
	int suspend;	/* enable KVM_CAP_ARM_SYSTEM_SUSPEND on the VM */
	int created;	/* vCPUs created (or creation failed) */
	int create_err;
	uint8_t *mem;
	unsigned next_snippet;
	unsigned calls;
};

static void on_alarm(int sig) { (void)sig; }

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000ULL;
}

static int get_reg(int fd, uint64_t id, uint64_t *val)
{
	struct kvm_one_reg r = { .id = id, .addr = (uint64_t)(uintptr_t)val };
	return ioctl(fd, KVM_GET_ONE_REG, &r) < 0 ? errno : 0;
}

static int set_reg(int fd, uint64_t id, uint64_t val)
{
	struct kvm_one_reg r = { .id = id, .addr = (uint64_t)(uintptr_t)&val };
	return ioctl(fd, KVM_SET_ONE_REG, &r) < 0 ? errno : 0;
}

/* Create and init every vCPU of the VM once; returns the errno of the first failure. */
static int ensure_vcpus(struct vm *vm)
{
	struct kvm_vcpu_init init;
	int i;

	if (vm->created)
		return vm->create_err;
	vm->created = 1;
	if (ioctl(vm->fd, KVM_ARM_PREFERRED_TARGET, &init) < 0)
		return vm->create_err = errno;
	for (i = 0; i < 1 + vm->extra && i < MAX_VCPUS; i++) {
		struct kvm_vcpu_init vi = init;
		int fd = ioctl(vm->fd, KVM_CREATE_VCPU, i);
		if (fd < 0)
			return vm->create_err = errno;
		vm->vcpu[i] = fd;
		vm->nvcpu = i + 1;
		vm->run[i] = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (vm->run[i] == MAP_FAILED) {
			vm->run[i] = NULL;
			return vm->create_err = errno;
		}
		memset(vi.features, 0, sizeof(vi.features));
		if (vm->psci02)
			vi.features[0] |= 1U << KVM_ARM_VCPU_PSCI_0_2;
		if (vm->mode != 0)
			vi.features[0] |= 1U << KVM_ARM_VCPU_EL1_32BIT;
		if (i > 0)
			vi.features[0] |= 1U << KVM_ARM_VCPU_POWER_OFF;
		if (ioctl(fd, KVM_ARM_VCPU_INIT, &vi) < 0)
			return vm->create_err = errno;
	}
	return 0;
}

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }

/* A64: MOVZ/MOVK x<rd> with a 64-bit value (4 instructions). */
static unsigned a64_mov(uint8_t *p, unsigned rd, uint64_t v)
{
	unsigned hw;
	for (hw = 0; hw < 4; hw++) {
		uint32_t op = hw == 0 ? 0xD2800000U : 0xF2800000U;
		put32(p + 4 * hw, op | hw << 21 | (uint32_t)((v >> (16 * hw)) & 0xFFFF) << 5 | rd);
	}
	return 16;
}

/* A32: MOVW/MOVT r<rd> (2 instructions). */
static unsigned a32_mov(uint8_t *p, unsigned rd, uint32_t v)
{
	uint32_t lo = v & 0xFFFF, hi = v >> 16;
	put32(p, 0xE3000000U | (lo >> 12) << 16 | rd << 12 | (lo & 0xFFF));
	put32(p + 4, 0xE3400000U | (hi >> 12) << 16 | rd << 12 | (hi & 0xFFF));
	return 8;
}

/* T32: MOVW/MOVT r<rd> (2 x 32-bit Thumb-2 instructions). */
static unsigned t32_mov1(uint8_t *p, uint16_t first, unsigned rd, uint32_t imm)
{
	uint16_t hw1 = first | (uint16_t)(((imm >> 11) & 1) << 10) | (uint16_t)((imm >> 12) & 0xF);
	uint16_t hw2 = (uint16_t)(((imm >> 8) & 7) << 12) | (uint16_t)(rd << 8) | (uint16_t)(imm & 0xFF);
	put16(p, hw1);
	put16(p + 2, hw2);
	return 4;
}

static unsigned t32_mov(uint8_t *p, unsigned rd, uint32_t v)
{
	unsigned n = t32_mov1(p, 0xF240, rd, v & 0xFFFF);
	return n + t32_mov1(p + n, 0xF2C0, rd, v >> 16);
}

/*
 * Write one call snippet: load x0-x3 (r0-r3) and x5/r5 = MMIO_ADDR, HVC or SMC,
 * then a store to the unmapped MMIO_ADDR so that KVM_RUN returns with an MMIO
 * exit after the call completed.  Returns the guest address of the HVC/SMC.
 */
static uint64_t write_snippet(struct vm *vm, int mode, const uint64_t x[4], int smc,
			      unsigned imm, uint64_t *start, int no_call)
{
	uint64_t off = (uint64_t)(vm->next_snippet++ % (GUEST_SIZE / SNIPPET)) * SNIPPET;
	uint8_t *p = vm->mem + off, *q = p;
	uint64_t call_at = 0;
	unsigned r;

	memset(p, 0, SNIPPET);
	*start = GUEST_BASE + off;
	if (mode == 0) {
		if (!no_call)
			for (r = 0; r < 4; r++)
				q += a64_mov(q, r, x[r]);
		q += a64_mov(q, 5, MMIO_ADDR);
		if (!no_call) {
			call_at = GUEST_BASE + (uint64_t)(q - vm->mem);
			put32(q, (smc ? 0xD4000003U : 0xD4000002U) | (imm & 0xFFFF) << 5);
			q += 4;
		}
		put32(q, 0xF90000BFU); /* str xzr, [x5] */
	} else if (mode == 1) {
		if (!no_call)
			for (r = 0; r < 4; r++)
				q += a32_mov(q, r, (uint32_t)x[r]);
		q += a32_mov(q, 5, MMIO_ADDR);
		if (!no_call) {
			call_at = GUEST_BASE + (uint64_t)(q - vm->mem);
			if (smc)
				put32(q, 0xE1600070U | (imm & 0xF));
			else
				put32(q, 0xE1400070U | ((imm >> 4) & 0xFFF) << 8 | (imm & 0xF));
			q += 4;
		}
		put32(q, 0xE5850000U); /* str r0, [r5] */
	} else {
		if (!no_call)
			for (r = 0; r < 4; r++)
				q += t32_mov(q, r, (uint32_t)x[r]);
		q += t32_mov(q, 5, MMIO_ADDR);
		if (!no_call) {
			call_at = GUEST_BASE + (uint64_t)(q - vm->mem);
			if (smc) {
				put16(q, (uint16_t)(0xF7F0 | (imm & 0xF)));
				put16(q + 2, 0x8000);
			} else {
				put16(q, (uint16_t)(0xF7E0 | ((imm >> 12) & 0xF)));
				put16(q + 2, (uint16_t)(0x8000 | (imm & 0xFFF)));
			}
			q += 4;
		}
		put16(q, 0x6028); /* str r0, [r5] */
		put16(q + 2, 0xBF00); /* nop */
	}
	__builtin___clear_cache((char *)p, (char *)p + SNIPPET);
	return call_at;
}

static int set_entry(struct vm *vm, int mode, uint64_t pc)
{
	int err;

	/*
	 * KVM completes a pending MMIO exit (skipping the store) on the next
	 * KVM_RUN; do that now with immediate_exit so that it does not skip the
	 * first instruction of the next snippet.
	 */
	if (vm->run[0]->exit_reason == EXIT_MMIO) {
		vm->run[0]->immediate_exit = 1;
		ioctl(vm->vcpu[0], KVM_RUN, 0);
		vm->run[0]->immediate_exit = 0;
	}
	err = set_reg(vm->vcpu[0], REG_PC, pc);
	if (!err && mode != 0) {
		uint64_t pstate = 0x1d3 | (mode == 2 ? 0x20 : 0); /* SVC, AIF masked, T for Thumb */
		err = set_reg(vm->vcpu[0], REG_PSTATE, pstate);
	}
	return err;
}

/* One KVM_RUN with a timeout; returns 0 or errno (EINTR on timeout). */
static int run_once(struct vm *vm)
{
	struct itimerval it = { { 0, 0 }, { timeout_ms / 1000, (timeout_ms % 1000) * 1000 } };
	struct itimerval off = { { 0, 0 }, { 0, 0 } };
	int ret, err;

	setitimer(ITIMER_REAL, &it, NULL);
	ret = ioctl(vm->vcpu[0], KVM_RUN, 0);
	err = ret < 0 ? errno : 0;
	setitimer(ITIMER_REAL, &off, NULL);
	return err;
}

/* Put a stopped vCPU back to runnable (after CPU_OFF, SYSTEM_OFF, ...). */
static void make_runnable(struct vm *vm)
{
	struct kvm_mp_state mp = { .mp_state = KVM_MP_STATE_RUNNABLE };
	ioctl(vm->vcpu[0], KVM_SET_MP_STATE, &mp);
}

static void do_run_step(struct vm *vm)
{
	uint64_t start, x[4] = { 0, 0, 0, 0 };
	const char *exit = "other";
	int err = ensure_vcpus(vm);

	if (!err) {
		write_snippet(vm, vm->mode, x, 0, 0, &start, 1);
		err = set_entry(vm, vm->mode, start);
	}
	if (!err) {
		err = run_once(vm);
		if (!err && vm->run[0]->exit_reason == EXIT_MMIO)
			exit = "mmio";
		else if (err == EINTR)
			exit = "timeout";
	}
	printf("N %d %s\n", err, err && err != EINTR ? "error" : exit);
}

static int parse_mode(const char *s)
{
	if (!strcmp(s, "a32"))
		return 1;
	if (!strcmp(s, "t32"))
		return 2;
	return 0;
}

static void do_call(struct vm *vm, const uint64_t xin[4], int smc, unsigned imm, int mode)
{
	uint64_t start = 0, call_at = 0, x[4] = { 0, 0, 0, 0 }, pc = 0, evx0 = 0;
	uint64_t nr = 0, flags = 0, data0 = 0;
	const char *exit = "none";
	int pcadv = -1, evtype = -1, ndata = 0, eintr = 0, exits = 0, err, done = 0, r;
	unsigned idx = vm->calls++;

	err = ensure_vcpus(vm);
	if (!err) {
		call_at = write_snippet(vm, mode, xin, smc, imm, &start, 0);
		err = set_entry(vm, mode, start);
	}
	while (!err && !done && exits++ < MAX_EXITS) {
		struct kvm_run *run = vm->run[0];
		err = run_once(vm);
		if (err == EINTR) {
			/* Timed out (vCPU halted: CPU_SUSPEND, CPU_OFF, ...): wake it and retry. */
			err = 0;
			if (++eintr > 2) {
				exit = "timeout";
				break;
			}
			make_runnable(vm);
			continue;
		}
		if (err)
			break;
		switch (run->exit_reason) {
		case EXIT_MMIO:
			done = 1;
			break;
		case EXIT_HYPERCALL:
			if (!strcmp(exit, "none"))
				exit = "hypercall";
			nr = run->hypercall.nr;
			memcpy(&flags, &run->hypercall.longmode, sizeof(flags));
			get_reg(vm->vcpu[0], REG_PC, &pc);
			pcadv = pc == call_at + 4;
			err = set_reg(vm->vcpu[0], REG_X(0), FWD_MARKER + idx);
			break;
		case EXIT_SYSTEM_EVENT:
			if (!strcmp(exit, "none"))
				exit = "system_event";
			evtype = (int)run->system_event.type;
			ndata = (int)run->system_event.ndata;
			data0 = run->system_event.data[0];
			get_reg(vm->vcpu[0], REG_X(0), &evx0);
			make_runnable(vm);
			break;
		default:
			exit = "unexpected";
			err = -(int)run->exit_reason;
			break;
		}
	}
	if (!err && !done && strcmp(exit, "timeout"))
		exit = "noexit";
	for (r = 0; r < 4 && vm->nvcpu; r++)
		get_reg(vm->vcpu[0], REG_X(r), &x[r]);
	printf("C %s %llx %llx %d %llx %llx %llx %llx %d %d %llx %llx %d %d\n", exit,
	       (unsigned long long)nr, (unsigned long long)flags, pcadv, (unsigned long long)x[0],
	       (unsigned long long)x[1], (unsigned long long)x[2], (unsigned long long)x[3], evtype,
	       ndata, (unsigned long long)data0, (unsigned long long)evx0, eintr, err);
}

static void vm_close(struct vm *vm)
{
	int i;
	for (i = 0; i < vm->nvcpu; i++) {
		if (vm->run[i])
			munmap(vm->run[i], (size_t)run_size);
		close(vm->vcpu[i]);
	}
	if (vm->mem)
		munmap(vm->mem, GUEST_SIZE);
	if (vm->fd >= 0)
		close(vm->fd);
	memset(vm, 0, sizeof(*vm));
	vm->fd = -1;
}

static int vm_open(struct vm *vm)
{
	struct kvm_userspace_memory_region reg;

	vm->fd = ioctl(kvm_fd, KVM_CREATE_VM, 0);
	if (vm->fd < 0)
		return errno;
	vm->mem = mmap(NULL, GUEST_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (vm->mem == MAP_FAILED) {
		vm->mem = NULL;
		return errno;
	}
	reg.slot = 0;
	reg.flags = 0;
	reg.guest_phys_addr = GUEST_BASE;
	reg.memory_size = GUEST_SIZE;
	reg.userspace_addr = (uint64_t)(uintptr_t)vm->mem;
	if (ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &reg) < 0)
		return errno;
	return 0;
}

/* KVM_ENABLE_CAP(KVM_CAP_ARM_SYSTEM_SUSPEND) on the VM fd: 0 or the errno. */
static int enable_suspend(struct vm *vm)
{
	struct kvm_enable_cap cap;

	memset(&cap, 0, sizeof(cap));
	cap.cap = CAP_ARM_SYSTEM_SUSPEND;
	return ioctl(vm->fd, KVM_ENABLE_CAP, &cap) < 0 ? errno : 0;
}

static int hexbytes(const char *s, uint8_t *out, size_t n)
{
	size_t i;
	for (i = 0; i < n; i++) {
		unsigned v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (uint8_t)v;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static char line[512];
	struct sigaction sa;
	struct utsname u;
	struct vm vm;
	FILE *in = argc > 1 ? fopen(argv[1], "r") : stdin;
	uint64_t t0 = now_us(), ts = 0;
	int in_scen = 0, failed = 0, nscen = 0;
	unsigned long long sid = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	memset(&vm, 0, sizeof(vm));
	vm.fd = -1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm; /* no SA_RESTART: KVM_RUN must return EINTR */
	sigaction(SIGALRM, &sa, NULL);

	printf("@@HVCLAB-BEGIN 1\n");
	uname(&u);
	printf("U %s\n", u.release);
	if (!in) {
		printf("Z %d input\n@@HVCLAB-END 0 0\n", errno);
		return 1;
	}
	kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm_fd < 0) {
		printf("Z %d /dev/kvm\n@@HVCLAB-END 0 0\n", errno);
		return 1;
	}
	run_size = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);

	while (fgets(line, sizeof(line), in)) {
		char op = line[0];
		if (op == 'T') {
			sscanf(line + 1, "%u", &timeout_ms);
		} else if (op == 'S') {
			char mode[8] = "a64";
			int psci02 = 1, extra = 0, suspend = 0, err;
			sscanf(line + 1, "%llx %7s %d %d %d", &sid, mode, &psci02, &extra, &suspend);
			vm_close(&vm);
			vm.mode = parse_mode(mode);
			vm.psci02 = psci02;
			vm.suspend = suspend;
			vm.extra = extra < 0 ? 0 : extra > MAX_VCPUS - 1 ? MAX_VCPUS - 1 : extra;
			in_scen = 1;
			failed = 0;
			nscen++;
			ts = now_us();
			printf("S %llx\n", sid);
			err = vm_open(&vm);
			if (err) {
				printf("X %d create_vm\n", err);
				failed = 1;
			} else if (vm.suspend && (err = enable_suspend(&vm)) != 0) {
				printf("X %d enable_cap\n", err);
				failed = 1;
			}
		} else if (!in_scen) {
			continue;
		} else if (op == 'E') {
			printf("E %llx %llu\n", sid, (unsigned long long)(now_us() - ts));
			vm_close(&vm);
			in_scen = 0;
		} else if (failed) {
			continue;
		} else if (op == 'F') {
			unsigned base, nr, action;
			char pad[64] = "";
			struct smccc_filter f;
			struct kvm_device_attr attr;
			memset(&f, 0, sizeof(f));
			sscanf(line + 1, "%x %x %x %63s", &base, &nr, &action, pad);
			f.base = base;
			f.nr_functions = nr;
			f.action = (uint8_t)action;
			if (strlen(pad) >= 30)
				hexbytes(pad, f.pad, sizeof(f.pad));
			memset(&attr, 0, sizeof(attr));
			attr.group = SMCCC_CTRL_GROUP;
			attr.attr = SMCCC_FILTER_ATTR;
			attr.addr = (uint64_t)(uintptr_t)&f;
			printf("F %d\n", ioctl(vm.fd, KVM_SET_DEVICE_ATTR, &attr) < 0 ? errno : 0);
		} else if (op == 'A') {
			unsigned long long group = 0, at = 0;
			struct kvm_device_attr attr;
			sscanf(line + 1, "%llx %llx", &group, &at);
			memset(&attr, 0, sizeof(attr));
			attr.group = (uint32_t)group;
			attr.attr = at;
			printf("A %d\n", ioctl(vm.fd, KVM_HAS_DEVICE_ATTR, &attr) < 0 ? errno : 0);
		} else if (op == 'B' || op == 'G' || op == 'P') {
			unsigned long long a = 0, b = 0;
			uint64_t val = 0;
			int err;
			sscanf(line + 1, "%llx %llx", &a, &b);
			err = ensure_vcpus(&vm);
			if (op == 'B') {
				printf("B %d\n", err ? err : set_reg(vm.vcpu[0], REG_FW_BMAP(a), b));
			} else if (op == 'P') {
				printf("P %d\n", err ? err : set_reg(vm.vcpu[0], REG_PSCI_VERSION, a));
			} else {
				if (!err)
					err = get_reg(vm.vcpu[0], REG_FW_BMAP(a), &val);
				printf("G %d %llx\n", err, (unsigned long long)val);
			}
		} else if (op == 'V') {
			printf("V %d\n", ensure_vcpus(&vm));
		} else if (op == 'N') {
			do_run_step(&vm);
		} else if (op == 'C') {
			unsigned long long x[4] = { 0, 0, 0, 0 };
			char conduit[4] = "h", mode[8] = "a64";
			unsigned imm = 0;
			uint64_t xs[4];
			sscanf(line + 1, "%llx %llx %llx %llx %3s %x %7s", &x[0], &x[1], &x[2], &x[3],
			       conduit, &imm, mode);
			xs[0] = x[0];
			xs[1] = x[1];
			xs[2] = x[2];
			xs[3] = x[3];
			do_call(&vm, xs, conduit[0] == 's', imm, parse_mode(mode));
		}
	}
	vm_close(&vm);
	printf("@@HVCLAB-END %d %llu\n", nscen, (unsigned long long)(now_us() - t0));
	return 0;
}

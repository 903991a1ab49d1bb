# bench/lib/sshd.sh: a private OpenSSH server on a free loopback port for
# the benchmarks (sourced by copies.sh, remote.sh and sftp.sh).
#
# start_sshd SSHD DIR LOG: generates a host key and a client key under DIR,
# starts SSHD in the background with internal-sftp, waits until it
# accepts connections (30 s at most) and writes DIR/known_hosts. Sets
# SSH_PORT and SSHD_PID, and exports EINVAULT_SFTP_KEY and
# EINVAULT_SFTP_KNOWN_HOSTS. Returns 1 when the server does not start.
start_sshd() {
	local sshd=$1 dir=$2 log=$3 permit=prohibit-password
	mkdir -p /run/sshd "$dir"
	ssh-keygen -q -t ed25519 -N '' -f "$dir/host_key"
	ssh-keygen -q -t ed25519 -N '' -f "$dir/client_key"
	cp "$dir/client_key.pub" "$dir/authorized_keys"
	SSH_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	[[ $(id -u) == 0 ]] && permit=yes
	cat >"$dir/sshd_config" <<CFG
Port $SSH_PORT
ListenAddress 127.0.0.1
HostKey $dir/host_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin $permit
StrictModes no
UsePAM no
MaxStartups 100
Subsystem sftp internal-sftp
CFG
	"$sshd" -D -e -f "$dir/sshd_config" 2>"$log" &
	SSHD_PID=$!
	local up=0
	for _ in $(seq 300); do
		if (exec 3<>/dev/tcp/127.0.0.1/"$SSH_PORT") 2>/dev/null; then up=1; break; fi
		sleep 0.1
	done
	((up)) || return 1
	echo "[127.0.0.1]:$SSH_PORT $(cut -d' ' -f1,2 "$dir/host_key.pub")" >"$dir/known_hosts"
	export EINVAULT_SFTP_KEY=$dir/client_key EINVAULT_SFTP_KNOWN_HOSTS=$dir/known_hosts
}

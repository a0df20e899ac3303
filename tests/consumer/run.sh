#!/usr/bin/env bash
# The clean-machine check (issue 14): publish the artifacts to a temporary repository, then build
# and run a separate Maven project (tests/consumer) that depends on them by coordinates alone,
# with an empty local repository, so nothing of this build's folders can leak in. It checks the
# layout too: the Java jar carries no native code, the classifier jars carry it.
#
#   bash tests/consumer/run.sh        (after `mvn -B verify` or `install`; .ci/run calls it)
#
# Third-party artifacts come from this machine's ~/.m2 (releases only, read as a file repository)
# and else from Maven Central; metakernels' own only from the temporary repository.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
work=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
repo=$work/repo
m2=$work/m2
start=$(date +%s)

# -Dmaven.install.skip: deploy runs the install phase first, which would replace ~/.m2's snapshot
# with this checkout's (a CI run in a clone then broke the working copy's `mvn -pl app` builds)
mvn -B -q -Dstyle.color=never deploy -pl java,platform/cpu,platform/gpu -am -DskipTests -Dmaven.javadoc.skip=true \
  -Dmaven.install.skip=true -DaltDeploymentRepository="tmp::file://$repo"

version=$(sed -n 's:.*<version>\(.*\)</version>.*:\1:p' pom.xml | head -1)
dir=$repo/org/metakernels/metakernels/$version
jar_of() { ls "$dir"/metakernels-*"$1".jar | grep -v -- '-sources\|-javadoc' | head -1; }
main=$(ls "$dir"/metakernels-*.jar | grep -v -- '-linux-\|-sources\|-javadoc' | head -1)
cpu=$(jar_of -linux-x86_64)
cuda=$(jar_of -linux-x86_64-cuda)
fail() { echo "consumer check: $*" >&2; exit 1; }
[ -n "$main" ] && [ -n "$cpu" ] && [ -n "$cuda" ] || fail "missing artifacts in $dir: $(ls "$dir")"
list() { unzip -Z1 "$1" >"$work/list"; }  # a listing in a file: grep -q on a pipe trips pipefail
list "$main"; grep -q '\.so$' "$work/list" && fail "the Java jar carries native libraries"
list "$cpu"; grep -q 'libmetakernels\.so$' "$work/list" || fail "the linux-x86_64 jar lacks libmetakernels.so"
grep -qi 'cuda' "$work/list" && fail "the linux-x86_64 jar carries CUDA code"
list "$cuda"; grep -q 'libmetakernels_cuda\.so$' "$work/list" || fail "the linux-x86_64-cuda jar lacks libmetakernels_cuda.so"
for a in metakernels-platform metakernels-platform-gpu metakernels-parent; do
  [ -d "$repo/org/metakernels/$a/$version" ] || fail "$a was not published"
done

cat >"$work/settings.xml" <<XML
<settings>
  <profiles>
    <profile>
      <id>consumer</id>
      <repositories>
        <repository><id>metakernels-tmp</id><url>file://$repo</url>
          <releases><enabled>true</enabled></releases><snapshots><enabled>true</enabled></snapshots></repository>
        <repository><id>machine-cache</id><url>file://$HOME/.m2/repository</url>
          <releases><enabled>true</enabled></releases><snapshots><enabled>false</enabled></snapshots></repository>
      </repositories>
      <pluginRepositories>
        <pluginRepository><id>machine-cache</id><url>file://$HOME/.m2/repository</url>
          <releases><enabled>true</enabled></releases><snapshots><enabled>false</enabled></snapshots></pluginRepository>
      </pluginRepositories>
    </profile>
  </profiles>
  <activeProfiles><activeProfile>consumer</activeProfile></activeProfiles>
</settings>
XML
out=$(mvn -B -q -Dstyle.color=never -s "$work/settings.xml" -Dmaven.repo.local="$m2" -f tests/consumer/pom.xml \
  -Dmetakernels.version="$version" compile exec:java 2>&1) || { echo "$out" >&2; fail "the consumer build or run failed"; }
echo "$out" | grep -o 'consumer:.*' || { echo "$out" >&2; fail "the consumer printed no result"; }
ls "$m2/org/metakernels/metakernels/$version" | grep -q 'linux-x86_64' || fail "the consumer did not resolve the native classifier"
echo "consumer check: passed in $(($(date +%s) - start)) s (artifacts: $(ls "$dir" | grep -c '\.jar$') jars of metakernels $version)"

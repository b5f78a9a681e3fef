package cmd

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
)

// RuntimeFlags are how the job pods of a backup or a restore run: resources, priority,
// placement, identity and cache.
type RuntimeFlags struct {
	CPURequest, CPULimit, MemoryRequest, MemoryLimit string
	Nice, IONiceClass, IONiceData                    int
	NodeSelector                                     []string
	Tolerations                                      []string
	ServiceAccount                                   string
	RunAsUser, RunAsGroup                            int64
	CacheSize                                        string
	NoCache                                          bool

	niceSet, ioDataSet, uidSet, gidSet bool
}

// addFlags registers the flags; what is "backup" or "restore".
func (o *RuntimeFlags) addFlags(f *pflag.FlagSet, what string) {
	def := "uid 0 with only DAC_READ_SEARCH"
	if what == "restore" {
		def = "uid 0 with only the capabilities to write files and set owners and modes"
	}
	f.StringVar(&o.CPURequest, "cpu-request", "", "CPU request of each "+what+" pod (e.g. 100m)")
	f.StringVar(&o.CPULimit, "cpu-limit", "", "CPU limit of each "+what+" pod")
	f.StringVar(&o.MemoryRequest, "memory-request", "", "memory request of each "+what+" pod (e.g. 128Mi)")
	f.StringVar(&o.MemoryLimit, "memory-limit", "", "memory limit of each "+what+" pod")
	f.IntVar(&o.Nice, "nice", 0, "CPU niceness of the "+what+" process, 0..19 (negative needs CAP_SYS_NICE)")
	f.IntVar(&o.IONiceClass, "ionice-class", 0, "I/O class of the "+what+" process: 2 best-effort, 3 idle (1 realtime needs CAP_SYS_ADMIN)")
	f.IntVar(&o.IONiceData, "ionice-data", 4, "I/O priority within the class, 0 (highest) .. 7")
	f.StringArrayVar(&o.NodeSelector, "node-selector", nil, "KEY=VALUE node label the "+what+" pods require; repeatable")
	f.StringArrayVar(&o.Tolerations, "toleration", nil, "KEY[=VALUE]:EFFECT or KEY:Exists:EFFECT taint the "+what+" pods tolerate; repeatable")
	f.StringVar(&o.ServiceAccount, "service-account", "", "existing ServiceAccount for the jobs (default: one created for this "+map[string]string{"backup": "configuration", "restore": "restore session"}[what]+")")
	f.Int64Var(&o.RunAsUser, "run-as-user", 0, "run the "+what+" process as this uid, replacing the default security context ("+def+")")
	f.Int64Var(&o.RunAsGroup, "run-as-group", 0, "run the "+what+" process with this gid (with --run-as-user)")
	f.StringVar(&o.CacheSize, "cache-size", "", "size of each "+what+" pod's metadata cache volume (default "+api.DefaultCacheSize+"): index and tree packs fetched once")
	f.BoolVar(&o.NoCache, "no-cache", false, "run the "+what+" pods without a metadata cache")
}

// changed notes which flags were given (their zero values are meaningful).
func (o *RuntimeFlags) changed(cmd *cobra.Command) {
	o.niceSet = cmd.Flags().Changed("nice")
	o.ioDataSet = cmd.Flags().Changed("ionice-data")
	o.uidSet = cmd.Flags().Changed("run-as-user")
	o.gidSet = cmd.Flags().Changed("run-as-group")
}

// runtime checks the flags and builds the runtime settings.
func (o *RuntimeFlags) runtime() (api.Runtime, error) {
	rt := api.Runtime{ServiceAccount: o.ServiceAccount}
	if o.niceSet {
		if o.Nice < -20 || o.Nice > 19 {
			return rt, fmt.Errorf("--nice %d: want -20..19", o.Nice)
		}
		rt.Nice = &o.Nice
	}
	if o.IONiceClass != 0 {
		if o.IONiceClass < 1 || o.IONiceClass > 3 {
			return rt, fmt.Errorf("--ionice-class %d: want 1 (realtime), 2 (best-effort) or 3 (idle)", o.IONiceClass)
		}
		rt.IONiceClass = o.IONiceClass
		if o.ioDataSet {
			if o.IONiceData < 0 || o.IONiceData > 7 {
				return rt, fmt.Errorf("--ionice-data %d: want 0..7", o.IONiceData)
			}
			rt.IONiceData = &o.IONiceData
		}
	}
	res := corev1.ResourceRequirements{}
	for _, q := range []struct {
		flag, val string
		list      *corev1.ResourceList
		name      corev1.ResourceName
	}{{"cpu-request", o.CPURequest, &res.Requests, corev1.ResourceCPU}, {"cpu-limit", o.CPULimit, &res.Limits, corev1.ResourceCPU},
		{"memory-request", o.MemoryRequest, &res.Requests, corev1.ResourceMemory}, {"memory-limit", o.MemoryLimit, &res.Limits, corev1.ResourceMemory}} {
		if q.val == "" {
			continue
		}
		v, err := resource.ParseQuantity(q.val)
		if err != nil {
			return rt, fmt.Errorf("--%s %q: %v", q.flag, q.val, err)
		}
		if *q.list == nil {
			*q.list = corev1.ResourceList{}
		}
		(*q.list)[q.name] = v
	}
	if len(res.Requests)+len(res.Limits) > 0 {
		rt.Resources, _ = json.Marshal(res)
	}
	for _, s := range o.NodeSelector {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			return rt, fmt.Errorf("--node-selector %q: want KEY=VALUE", s)
		}
		if rt.NodeSelector == nil {
			rt.NodeSelector = map[string]string{}
		}
		rt.NodeSelector[k] = v
	}
	if len(o.Tolerations) > 0 {
		var tols []corev1.Toleration
		for _, s := range o.Tolerations {
			t, err := parseToleration(s)
			if err != nil {
				return rt, err
			}
			tols = append(tols, t)
		}
		rt.Tolerations, _ = json.Marshal(tols)
	}
	if o.uidSet || o.gidSet {
		noEscalation := false
		sc := corev1.SecurityContext{AllowPrivilegeEscalation: &noEscalation, Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}
		if o.uidSet {
			sc.RunAsUser = &o.RunAsUser
		}
		if o.gidSet {
			sc.RunAsGroup = &o.RunAsGroup
		}
		rt.SecurityContext, _ = json.Marshal(sc)
	}
	if o.NoCache && o.CacheSize != "" {
		return rt, fmt.Errorf("--cache-size and --no-cache exclude each other: give one")
	}
	if o.CacheSize != "" {
		q, err := resource.ParseQuantity(o.CacheSize)
		if err != nil || q.Sign() <= 0 || q.Value() < 16<<20 {
			return rt, fmt.Errorf("--cache-size %q: want a size of at least 16Mi, like 256Mi or 2Gi", o.CacheSize)
		}
		rt.CacheSize = q.String()
	}
	rt.NoCache = o.NoCache
	return rt, nil
}

func parseToleration(s string) (corev1.Toleration, error) {
	bad := fmt.Errorf("--toleration %q: want KEY=VALUE:EFFECT, KEY:EFFECT (any value) or :Exists (every taint)", s)
	if s == ":Exists" {
		return corev1.Toleration{Operator: corev1.TolerationOpExists}, nil
	}
	kv, effect, ok := strings.Cut(s, ":")
	if !ok {
		return corev1.Toleration{}, bad
	}
	t := corev1.Toleration{Effect: corev1.TaintEffect(effect)}
	switch t.Effect {
	case corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute, "":
	default:
		return corev1.Toleration{}, bad
	}
	if k, v, ok := strings.Cut(kv, "="); ok {
		t.Key, t.Value, t.Operator = k, v, corev1.TolerationOpEqual
	} else {
		t.Key, t.Operator = kv, corev1.TolerationOpExists
	}
	if t.Key == "" {
		return corev1.Toleration{}, bad
	}
	return t, nil
}
